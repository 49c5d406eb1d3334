"""Detection metrics (ROS-free): IoU matching, precision/recall, running averages."""
