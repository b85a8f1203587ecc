"""ament_python build of alam_ros (colcon build). Without colcon, `pip install -e .` in the repository root installs
the same module `alam_ros` and its console scripts (pyproject.toml)."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "alam_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="alam-control maintainers",
    maintainer_email="maintainers@alam-control.invalid",
    description="ROS 2 policy node with a lambda(s) risk monitor, and a MuJoCo sim bridge",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "alam_policy_node = alam_ros.policy_node:main",
            "alam_sim_bridge = alam_ros.sim_bridge:main",
            "alam-ros-demo = alam_ros.demo:main",
        ],
    },
)
