#!/usr/bin/env bash
# The project's test command (README). Creates/updates the three environments, fetches the test data
# into ~/.cache/aiat, and runs:
#   1. the ROS-free core on Python 3.10 + numpy 1.21 (.venv-np121)       -m core
#   2. everything the vehicle runs, on Python 3.10 with the ROS 2 wheels (.venv310), no torch
#   3. the same on Python 3.12 with ROS 2 Jazzy's own rclpy wheels (.venv312)
#   4. on Python 3.11 (.venv): every unit and fuzz test, and the integration tests that need torch or
#      PyBullet; the vehicle's node-over-DDS tests ran in 2 and 3, on the vehicles' Pythons
# With arguments, runs only step 4 with those pytest arguments (e.g. scripts/test.sh tests/unit -k bundle).
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
started=$(date +%s)

bash scripts/setup_env.sh full || exit 1
.venv/bin/python -m aiat_perception.prepare_data || exit 1

results=$(mktemp -d)
status=0
run_suite() {  # run_suite NAME PYTHON PYTEST-ARGS...
  local name=$1 python=$2; shift 2
  echo "=== [$name] $python -m pytest $*"
  "$python" -m pytest --junitxml="$results/$name.xml" "$@"
  local code=$?
  if [ $code -ne 0 ]; then echo "=== [$name] pytest exited $code"; touch "$results/failed"; fi
}

if [ $# -gt 0 ]; then
  run_suite full .venv/bin/python "$@"
else
  bash scripts/setup_env.sh numpy121 || exit 1
  bash scripts/setup_env.sh lean310 || exit 1
  bash scripts/setup_env.sh lean312 || exit 1
  # Two groups side by side: the suites mostly wait on DDS, processes and sleeps (about a third of
  # two cores busy when run one after another), and each test session claims its own ROS domain.
  {
    run_suite core-py310-numpy121 .venv-np121/bin/python tests/unit tests/fuzz -m "core and not training and not sim" -q
    run_suite full-py311 .venv/bin/python tests -m "training or sim or not integration" -q
  } > "$results/group-a.log" 2>&1 &
  group_a=$!
  {
    run_suite vehicle-py310 .venv310/bin/python tests -m "not training and not sim" -q
    run_suite vehicle-py312 .venv312/bin/python tests -m "not training and not sim" -q
  } > "$results/group-b.log" 2>&1
  wait "$group_a"
  cat "$results/group-a.log" "$results/group-b.log"
fi
[ -e "$results/failed" ] && status=1

.venv/bin/python - "$results" "$started" <<'PY'
import sys, time, xml.etree.ElementTree as ET
from pathlib import Path
total = {'passed': 0, 'failed': 0, 'skipped': 0}
for path in sorted(Path(sys.argv[1]).glob('*.xml')):
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == 'testsuite' else list(root)
    n = {k: sum(int(s.get(k, 0)) for s in suites) for k in ('tests', 'failures', 'errors', 'skipped')}
    failed = n['failures'] + n['errors']
    passed = n['tests'] - failed - n['skipped']
    print(f'{path.stem}: {passed} passed, {failed} failed, {n["skipped"]} skipped')
    total['passed'] += passed; total['failed'] += failed; total['skipped'] += n['skipped']
print(f'(test command took {time.time() - int(sys.argv[2]):.0f} s)')
print(f"total: {total['passed']} passed, {total['failed']} failed, {total['skipped']} skipped")
PY
exit $status
