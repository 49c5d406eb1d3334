"""Camera-lidar fusion, ROS-free: a 3D position for every camera detection, and an agreement check.

    camera = CameraModel.from_kitti(calib, width, height)           # or from_camera_info_fields(...)
    result = fuse(boxes, class_names, scores, points, cam_from_lidar, camera, FusionConfig(),
                  lidar_detections)
    monitor = AgreementMonitor(window_frames=50); monitor.update(result); monitor.status()
"""
from aiat_perception.fusion.agreement import AgreementMonitor, AgreementStatus, AgreementThresholds, Level
from aiat_perception.fusion.camera import CameraModel, CameraModelError, Projection, homogeneous, transform_points
from aiat_perception.fusion.config import DEFAULT_CLASS_DEPTH, FusionConfig, FusionConfigError
from aiat_perception.fusion.fuse import FusedObject, FusionResult, fuse

__all__ = ['AgreementMonitor', 'AgreementStatus', 'AgreementThresholds', 'Level', 'CameraModel',
           'CameraModelError', 'Projection', 'homogeneous', 'transform_points', 'DEFAULT_CLASS_DEPTH',
           'FusionConfig', 'FusionConfigError', 'FusedObject', 'FusionResult', 'fuse']
