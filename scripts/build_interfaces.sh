#!/usr/bin/env bash
# Builds the pip-only interface packages (ros2_ws/pip_only/*: vision_msgs, tf2_msgs) into a venv that
# holds the ROS 2 wheels. Only for machines without a ROS distribution; on a robot the distribution's
# packages are used instead (see ros2_ws/README.md).
# Usage: scripts/build_interfaces.sh VENV
set -euo pipefail
venv=$(cd "$1" && pwd)
repo=$(cd "$(dirname "$0")/.." && pwd)
py="$venv/bin/python"
build_root="$venv/.interface-build"

# The wheels' cmake files name the wheel builder's Python; point them at this venv's.
py_include=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
np_include=$("$py" -c 'import numpy; print(numpy.get_include())')
py_version=$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
{ grep -rl /opt/python "$venv/share" --include='*.cmake' 2>/dev/null || true; } | while read -r f; do
  sed -i -E \
    -e "s#/opt/python/cp[0-9]+-cp[0-9]+/include/python[0-9.]+#$py_include#g" \
    -e "s#/opt/python/cp[0-9]+-cp[0-9]+/lib/python[0-9.]+/site-packages/numpy/(_core|core)/include#$np_include#g" \
    -e "s#/opt/python/cp[0-9]+-cp[0-9]+/bin/python[0-9.]*#$py#g" \
    -e "s#/opt/python/cp[0-9]+-cp[0-9]+#$venv#g" "$f"
done

for pkg in tf2_msgs vision_msgs; do
  src="$repo/ros2_ws/pip_only/$pkg"
  stamp="$build_root/$pkg.stamp"
  digest=$(cat "$src"/package.xml "$src"/CMakeLists.txt "$src"/msg/*.msg | sha256sum | cut -c1-16)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ] && "$py" -c "import $pkg.msg" 2>/dev/null; then
    continue
  fi
  echo "building $pkg into $venv" >&2
  rm -rf "$build_root/$pkg"
  cmake -G Ninja -S "$src" -B "$build_root/$pkg" \
    -DCMAKE_PREFIX_PATH="$venv" -DCMAKE_INSTALL_PREFIX="$venv" \
    -DPython3_EXECUTABLE="$py" -DPYTHON_EXECUTABLE="$py" \
    -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release > "$build_root.$pkg.log" 2>&1 \
    && ninja -C "$build_root/$pkg" install >> "$build_root.$pkg.log" 2>&1 \
    || { tail -40 "$build_root.$pkg.log" >&2; echo "building $pkg failed (log: $build_root.$pkg.log)" >&2; exit 1; }
  # Python $py_version: make sure the generated package is on the venv's path.
  "$py" -c "import $pkg.msg" || { echo "$pkg built but does not import" >&2; exit 1; }
  echo "$digest" > "$stamp"
done
