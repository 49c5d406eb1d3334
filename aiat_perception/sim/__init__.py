"""PyBullet simulator: scenarios, world and sensors, ground truth, KITTI/COCO dataset writer."""
