#!/usr/bin/env bash
# Creates or updates a project venv. Idempotent: a second run with unchanged requirements takes
# about a second. Nothing outside the repo is changed except download caches (~/.cache).
#
#   scripts/setup_env.sh            full environment in .venv (Python 3.11): ROS 2 wheels, runtime,
#                                   simulation, training and test tools
#   scripts/setup_env.sh lean310    .venv310 (Python 3.10, like ROS 2 Humble on JetPack 6): ROS 2 wheels,
#                                   vehicle runtime and test tools, no torch
#   scripts/setup_env.sh lean312    .venv312 (Python 3.12): ROS 2 Jazzy's own wheels (rclpy 7.1.6, the LTS
#                                   most robots run), vehicle runtime and test tools, no torch
#   scripts/setup_env.sh numpy121   .venv-np121 (Python 3.10, numpy 1.21 like Ubuntu 22.04): the ROS-free
#                                   core only (no ROS wheels: they are built against numpy 2)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
flavour=${1:-full}

find_python() {  # find_python 3.11
  for candidate in "python$1" "$HOME/.pyenv/versions/$1"*/bin/python "/usr/bin/python$1"; do
    for exe in $candidate; do
      if command -v "$exe" >/dev/null 2>&1 && "$exe" -c "import sys; assert sys.version_info[:2] == tuple(map(int, '$1'.split('.')))" 2>/dev/null; then
        command -v "$exe"; return 0
      fi
    done
  done
  echo "Python $1 not found (pyenv install $1, or apt-get install python$1-venv)" >&2
  return 1
}

case "$flavour" in
  full)     venv=.venv;       pyver=3.11; distro=kilted; reqs="ros ros-build runtime sim training test eval"; interfaces=1; editable=1 ;;
  lean310)  venv=.venv310;    pyver=3.10; distro=kilted; reqs="ros ros-build runtime test";              interfaces=1; editable=1 ;;
  lean312)  venv=.venv312;    pyver=3.12; distro=jazzy;  reqs="ros-jazzy ros-build-jazzy runtime test";  interfaces=1; editable=1 ;;
  numpy121) venv=.venv-np121; pyver=3.10; distro=none;   reqs="core-numpy121";                           interfaces=0; editable=0 ;;
  *) echo "unknown environment '$flavour' (full, lean310, lean312, numpy121)" >&2; exit 2 ;;
esac

pip_install() {  # quiet pip; drops the machine's notes about absent local mirror folders
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "$@" 2> >(grep -v '^WARNING: Location' >&2)
}

req_args=()
for r in $reqs; do req_args+=(-r "requirements/$r.txt"); done
digest=$( (cat setup.py; for r in $reqs; do cat "requirements/$r.txt"; done) | sha256sum | cut -c1-16)
stamp="$venv/.aiat-stamp"

# One ROS distribution per venv: wheels of two distributions in one venv collide (same modules,
# different ABIs), so a venv built for another one is recreated. Venvs from before this marker
# existed hold Kilted.
distro_marker="$venv/.aiat-ros-distro"
if [ -x "$venv/bin/python" ] && [ "$(cat "$distro_marker" 2>/dev/null || echo kilted)" != "$distro" ]; then
  echo "[setup] $venv holds ROS 2 $(cat "$distro_marker" 2>/dev/null || echo kilted), not $distro: recreating it" >&2
  rm -rf "$venv"
fi
if [ ! -x "$venv/bin/python" ]; then
  "$(find_python "$pyver")" -m venv "$venv"
  echo "$distro" > "$distro_marker"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
  echo "[setup] installing $flavour environment into $venv (first run: a few minutes)" >&2
  pip_install -U pip wheel setuptools
  pip_install "${req_args[@]}"
  if [ "$editable" = 1 ]; then
    pip_install --no-deps --no-build-isolation -e . > /dev/null
  fi
  echo "$digest" > "$stamp"
fi
if [ "$interfaces" = 1 ]; then
  bash scripts/build_interfaces.sh "$venv"
fi
