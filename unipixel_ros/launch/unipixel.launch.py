"""unipixel_node for any RGB-D camera with aligned depth (camera-agnostic).

    ros2 launch unipixel_ros unipixel.launch.py camera_prefix:=camera/camera engine:=onnxruntime
    ros2 launch unipixel_ros unipixel.launch.py params_file:=/path/to/my_params.yaml use_rviz:=true
    ros2 launch unipixel_ros unipixel.launch.py backend:=sam3 model_path:=/models/sam3

``camera_prefix`` is prepended to color/image_raw, aligned_depth_to_color/image_raw and
color/camera_info (RealSense naming; the simulator uses the same names). Every process started
here reads the Fast DDS large-message profile shipped in config/. ``use_rviz:=true`` without
rviz2 installed stops the launch with a message before anything starts.
"""
import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from unipixel_ros.ros.launch_checks import is_true, require_package


def _nodes(context, *args, **kwargs):
    use_rviz = is_true(LaunchConfiguration('use_rviz').perform(context))
    if use_rviz:  # before any node is returned: a missing rviz2 leaves nothing running
        require_package('rviz2', 'use_rviz:=true', hint='launch with use_rviz:=false')
    prefix = LaunchConfiguration('camera_prefix').perform(context).strip('/')
    share = FindPackageShare('unipixel_ros').perform(context)
    params = [LaunchConfiguration('params_file').perform(context) or
              os.path.join(share, 'config', 'unipixel.yaml'),
              {'backend': LaunchConfiguration('backend').perform(context),
               'engine': LaunchConfiguration('engine').perform(context),
               'model_path': LaunchConfiguration('model_path').perform(context),
               'color_topic': f'{prefix}/color/image_raw',
               'depth_topic': f'{prefix}/aligned_depth_to_color/image_raw',
               'camera_info_topic': f'{prefix}/color/camera_info'}]
    nodes = [Node(package='unipixel_ros', executable='unipixel_node', name='unipixel_node',
                  namespace=LaunchConfiguration('namespace'), output='screen',
                  parameters=params)]
    if use_rviz:
        nodes.append(Node(package='rviz2', executable='rviz2', name='rviz2', output='screen',
                          arguments=['-d', os.path.join(share, 'config', 'unipixel.rviz')]))
    return nodes


def generate_launch_description() -> LaunchDescription:
    profile = PathJoinSubstitution([FindPackageShare('unipixel_ros'), 'config',
                                    'fastdds_large_messages.xml'])
    return LaunchDescription([
        DeclareLaunchArgument('camera_prefix', default_value='camera/camera',
                              description='topic prefix of the RGB-D camera'),
        DeclareLaunchArgument('backend', default_value='unipixel',
                              description='unipixel (the shipped model) | sam3 (SAM 3 + the '
                                          'referring resolver; needs model_path)'),
        DeclareLaunchArgument('engine', default_value='onnxruntime',
                              description='torch | onnxruntime | tensorrt (| triton)'),
        DeclareLaunchArgument('model_path', default_value='',
                              description='checkpoint, ONNX export dir or SAM 3 model dir '
                                          '("" = shipped model)'),
        DeclareLaunchArgument('params_file', default_value='',
                              description='parameters YAML ("" = config/unipixel.yaml)'),
        DeclareLaunchArgument('namespace', default_value='', description='node namespace'),
        DeclareLaunchArgument('use_rviz', default_value='false', description='start rviz2'),
        # Fast DDS 2.x (Humble, Jazzy) and 3.x (Kilted+) read different variable names.
        SetEnvironmentVariable('FASTRTPS_DEFAULT_PROFILES_FILE', profile),
        SetEnvironmentVariable('FASTDDS_DEFAULT_PROFILES_FILE', profile),
        OpaqueFunction(function=_nodes),
    ])
