"""ROS 2 nodes of alam-control (DESIGN.md section 6): `alam_policy_node`, `alam_sim_bridge`, `alam-ros-demo`.

Pure rclpy with standard messages only, so the pip-installed ROS 2 Jazzy wheels suffice (no colcon build).
"""
