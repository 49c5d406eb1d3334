"""Classical lidar perception, ROS-free (numpy + SciPy): 3D point clouds (crop, ground removal, voxel
clustering, L-shape / cylinder fitting, rule-based classes) and 2D laser scans (adaptive-breakpoint
segmentation, legs and persons). Nodes are thin shells over :class:`PointCloudDetector` and
:class:`ScanDetector`: one call per message, detections and per-stage times out."""
from aiat_perception.lidar.types import Detection3D, DetectionResult  # noqa: F401
