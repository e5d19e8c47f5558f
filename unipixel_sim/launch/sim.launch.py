"""Simulated tabletop: ``sim_camera`` (scene + RGB-D camera), ``grasp_executor`` (Panda) and
``unipixel_node`` (perception, from unipixel_ros' unipixel.launch.py), optionally rviz2.

    ros2 launch unipixel_sim sim.launch.py seed:=3 rate_hz:=15.0 depth_encoding:=16UC1 \
        engine:=onnxruntime use_rviz:=true use_perception:=true

The camera's topic names are RealSense's, so unipixel_node runs with its defaults.
``use_rviz:=true`` without rviz2 installed stops the launch with a message before anything starts.
"""
import os

from launch import LaunchDescription
from launch.actions import (DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction,
                            SetEnvironmentVariable)
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from unipixel_ros.ros.launch_checks import is_true, require_package


def _check_packages(context, *args, **kwargs):
    """Runs before every process below: a missing rviz2 leaves nothing running."""
    if is_true(LaunchConfiguration('use_rviz').perform(context)):
        require_package('rviz2', 'use_rviz:=true', hint='launch with use_rviz:=false')
    return []


def _rviz(context, *args, **kwargs):
    """rviz2 with unipixel_ros' config when that file is installed, else rviz2's default."""
    share = FindPackageShare('unipixel_ros').perform(context)
    config = os.path.join(share, 'config', 'unipixel.rviz')
    arguments = ['-d', config] if os.path.isfile(config) else []
    return [Node(package='rviz2', executable='rviz2', name='rviz2', arguments=arguments,
                 output='screen', condition=IfCondition(LaunchConfiguration('use_rviz')))]


def generate_launch_description() -> LaunchDescription:
    sim_config = PathJoinSubstitution([FindPackageShare('unipixel_sim'), 'config'])
    # Fast DDS's default 512 KB shared-memory segment drops 640x480 frames; this profile
    # (32 MiB segment + UDPv4) is read by every process started below. Both variable names:
    # FASTRTPS_* for Fast DDS 2.x (Humble, Jazzy), FASTDDS_* for 3.x (Kilted and newer).
    profile = PathJoinSubstitution([FindPackageShare('unipixel_ros'), 'config',
                                    'fastdds_large_messages.xml'])
    return LaunchDescription([
        DeclareLaunchArgument('seed', default_value='0', description='scene seed'),
        DeclareLaunchArgument('rate_hz', default_value='15.0',
                              description='camera publish rate, Hz'),
        DeclareLaunchArgument('depth_encoding', default_value='16UC1',
                              description='16UC1 (millimetres) or 32FC1 (metres)'),
        DeclareLaunchArgument('use_rviz', default_value='false', description='start rviz2'),
        DeclareLaunchArgument('use_perception', default_value='true',
                              description='start unipixel_node'),
        DeclareLaunchArgument('backend', default_value='unipixel',
                              description='unipixel_node backend: unipixel | sam3 '
                                          '(needs model_path)'),
        DeclareLaunchArgument('engine', default_value='onnxruntime',
                              description='unipixel_node engine: torch | onnxruntime | tensorrt'),
        DeclareLaunchArgument('model_path', default_value='',
                              description='unipixel_node model ("" = the shipped model)'),
        OpaqueFunction(function=_check_packages),
        SetEnvironmentVariable('FASTRTPS_DEFAULT_PROFILES_FILE', profile),
        SetEnvironmentVariable('FASTDDS_DEFAULT_PROFILES_FILE', profile),
        Node(
            package='unipixel_sim', executable='sim_camera', name='sim_camera', output='screen',
            parameters=[
                PathJoinSubstitution([sim_config, 'sim_camera.yaml']),
                {'seed': ParameterValue(LaunchConfiguration('seed'), value_type=int),
                 'rate_hz': ParameterValue(LaunchConfiguration('rate_hz'), value_type=float),
                 'depth_encoding': ParameterValue(LaunchConfiguration('depth_encoding'),
                                                  value_type=str)},
            ]),
        Node(
            package='unipixel_sim', executable='grasp_executor', name='grasp_executor',
            output='screen',
            # one grasp per pick command (unipixel/pick), not every tracked frame's grasp
            remappings=[('unipixel/grasp', 'unipixel/pick')],
            parameters=[PathJoinSubstitution([sim_config, 'grasp_executor.yaml'])]),
        OpaqueFunction(function=_rviz),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(PathJoinSubstitution(
                [FindPackageShare('unipixel_ros'), 'launch', 'unipixel.launch.py'])),
            launch_arguments={'backend': LaunchConfiguration('backend'),
                              'engine': LaunchConfiguration('engine'),
                              'model_path': LaunchConfiguration('model_path'),
                              'use_rviz': 'false'}.items(),  # rviz2 is started above
            condition=IfCondition(LaunchConfiguration('use_perception'))),
    ])
