"""Example: an Intel RealSense (realsense2_camera) with depth aligned to color + unipixel_node.

    ros2 launch unipixel_ros realsense.launch.py engine:=tensorrt use_rviz:=true
    ros2 launch unipixel_ros realsense.launch.py backend:=sam3 model_path:=/models/sam3

realsense2_camera's rs_launch.py publishes /camera/camera/color/image_raw,
/camera/camera/aligned_depth_to_color/image_raw (16UC1, mm) and /camera/camera/color/camera_info
when align_depth.enable is true: exactly unipixel_node's default topic names. Without
realsense2_camera installed (or with use_rviz:=true and no rviz2) the launch stops with a message
before anything starts.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare

from unipixel_ros.ros.launch_checks import is_true, require_package

NO_REALSENSE_HINT = 'start your camera driver yourself and use unipixel.launch.py'


def _check_packages(context, *args, **kwargs):
    """Runs before the includes: nothing is started when a needed package is missing."""
    require_package('realsense2_camera', 'realsense.launch.py', hint=NO_REALSENSE_HINT)
    if is_true(LaunchConfiguration('use_rviz').perform(context)):
        require_package('rviz2', 'use_rviz:=true', hint='launch with use_rviz:=false')
    return []


def generate_launch_description() -> LaunchDescription:
    realsense = PathJoinSubstitution([FindPackageShare('realsense2_camera'), 'launch',
                                      'rs_launch.py'])
    unipixel = PathJoinSubstitution([FindPackageShare('unipixel_ros'), 'launch',
                                     'unipixel.launch.py'])
    return LaunchDescription([
        DeclareLaunchArgument('backend', default_value='unipixel',
                              description='unipixel | sam3 (needs model_path)'),
        DeclareLaunchArgument('engine', default_value='onnxruntime'),
        DeclareLaunchArgument('model_path', default_value='',
                              description='"" = the shipped model'),
        DeclareLaunchArgument('use_rviz', default_value='false'),
        OpaqueFunction(function=_check_packages),
        IncludeLaunchDescription(PythonLaunchDescriptionSource(realsense), launch_arguments={
            'align_depth.enable': 'true',
            'rgb_camera.color_profile': '640,480,15',
            'depth_module.depth_profile': '640,480,15',
            'pointcloud.enable': 'false',
        }.items()),
        IncludeLaunchDescription(PythonLaunchDescriptionSource(unipixel), launch_arguments={
            'camera_prefix': 'camera/camera',
            'backend': LaunchConfiguration('backend'),
            'engine': LaunchConfiguration('engine'),
            'model_path': LaunchConfiguration('model_path'),
            'use_rviz': LaunchConfiguration('use_rviz'),
        }.items()),
    ])
