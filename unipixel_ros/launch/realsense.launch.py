"""Example: an Intel RealSense (realsense2_camera) with depth aligned to color + unipixel_node.

    ros2 launch unipixel_ros realsense.launch.py engine:=tensorrt use_rviz:=true

realsense2_camera's rs_launch.py publishes /camera/camera/color/image_raw,
/camera/camera/aligned_depth_to_color/image_raw (16UC1, mm) and /camera/camera/color/camera_info
when align_depth.enable is true: exactly unipixel_node's default topic names.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    realsense = PathJoinSubstitution([FindPackageShare('realsense2_camera'), 'launch',
                                      'rs_launch.py'])
    unipixel = PathJoinSubstitution([FindPackageShare('unipixel_ros'), 'launch',
                                     'unipixel.launch.py'])
    return LaunchDescription([
        DeclareLaunchArgument('engine', default_value='onnxruntime'),
        DeclareLaunchArgument('use_rviz', default_value='false'),
        IncludeLaunchDescription(PythonLaunchDescriptionSource(realsense), launch_arguments={
            'align_depth.enable': 'true',
            'rgb_camera.color_profile': '640,480,15',
            'depth_module.depth_profile': '640,480,15',
            'pointcloud.enable': 'false',
        }.items()),
        IncludeLaunchDescription(PythonLaunchDescriptionSource(unipixel), launch_arguments={
            'camera_prefix': 'camera/camera',
            'engine': LaunchConfiguration('engine'),
            'use_rviz': LaunchConfiguration('use_rviz'),
        }.items()),
    ])
