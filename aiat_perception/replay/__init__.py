"""Bags for evaluation, ROS-free (rosbags + numpy): the message types (``typestore``), building and
reading messages (``messages``), writing bags (``bag_writer``), converters (``kitti_bag``,
``ros1``), pairing outputs with ground truth by stamp (``pairing``) and the in-memory player
(``player``, which needs rclpy only when it publishes).
"""
