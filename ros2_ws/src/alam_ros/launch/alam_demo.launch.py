"""Both nodes from one params YAML: `ros2 launch alam_ros alam_demo.launch.py [params_file:=...] [bundle_dir:=...]`.

Where `ros2 launch` is not installed (pip-installed ROS 2 wheels), `alam-ros-demo` does the same.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import LifecycleNode, Node


def generate_launch_description():
    default_params = os.path.join(get_package_share_directory("alam_ros"), "config", "diffdrive.yaml")
    params_file = LaunchConfiguration("params_file")
    bundle_dir = LaunchConfiguration("bundle_dir")
    with_bundle = PythonExpression(["'", bundle_dir, "' != ''"])
    policy = {"package": "alam_ros", "executable": "alam_policy_node", "name": "alam_policy_node", "namespace": ""}
    return LaunchDescription(
        [
            DeclareLaunchArgument("params_file", default_value=default_params, description="params YAML"),
            DeclareLaunchArgument("bundle_dir", default_value="", description="overrides the YAML's bundle_dir"),
            Node(
                package="alam_ros",
                executable="alam_sim_bridge",
                name="alam_sim_bridge",
                parameters=[params_file],
                output="screen",
            ),
            # A lifecycle node that configures and activates itself (autostart), so no lifecycle manager is needed.
            LifecycleNode(
                **policy,
                parameters=[params_file, {"bundle_dir": bundle_dir}],
                output="screen",
                condition=IfCondition(with_bundle),
            ),
            LifecycleNode(**policy, parameters=[params_file], output="screen", condition=UnlessCondition(with_bundle)),
        ]
    )
