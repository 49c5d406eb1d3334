"""Replay evaluation of recorded drives (``aiat-eval``): the bag through the ROS-free cores (offline)
or through the real node graph over DDS (live), scored against the bag's ground truth, with a
report (report.json, frames.jsonl, report.html) and pass/fail criteria. Needs ``pip install .[eval]``
(rosbags, pycocotools, matplotlib); bag IO itself is in ``aiat_perception.replay``.
"""
