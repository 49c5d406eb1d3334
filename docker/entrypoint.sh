#!/usr/bin/env bash
# Sources ROS 2 and the workspace the image built, then runs the command (default: the camera detector).
set -euo pipefail
# shellcheck disable=SC1090,SC1091
source "/opt/ros/${ROS_DISTRO}/setup.bash"
# shellcheck disable=SC1091
source /opt/aiat_ws/install/setup.bash
exec "$@"
