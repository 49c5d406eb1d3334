#!/usr/bin/env bash
# The project's demo command (README): the closed loop in simulation. PyBullet renders a street with
# photo-textured and mesh actors, the camera detector runs the pretrained COCO NanoDet on it, and the
# IoU monitor scores detections against the simulator's ground truth; live latency and IoU are printed
# and a few annotated frames are saved to out/demo/.
# First run: creates .venv and fetches data (a few minutes); later runs start at once.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
bash scripts/setup_env.sh full
.venv/bin/python -m aiat_perception.prepare_data
export ROS_AUTOMATIC_DISCOVERY_RANGE=${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}
exec .venv/bin/aiat-launch sim_demo --duration "${DEMO_SECONDS:-90}" mode:=realtime max_frames:="${DEMO_FRAMES:-60}" "$@"
