"""Topic names of the bags we write and evaluate by default (each one a CLI option where it is read)."""
IMAGE = '/camera/image_raw'
COMPRESSED_IMAGE = '/camera/image_raw/compressed'
CAMERA_INFO = '/camera/camera_info'
POINTS = '/velodyne_points'
SCAN = '/scan'
TF_STATIC = '/tf_static'
GT_2D = '/ground_truth/detections_2d'
GT_3D = '/ground_truth/detections_3d'
GT_LEGS = '/leg_cluster_positions'        # the leg-tracker bags' PoseArray labels
LEG_SCAN = '/training_scan'
