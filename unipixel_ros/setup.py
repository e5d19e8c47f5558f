"""ament_python package ``unipixel_ros`` (also pip-installable into the project venv)."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'unipixel_ros'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{PACKAGE}']),
        (f'share/{PACKAGE}', ['package.xml']),
        (f'share/{PACKAGE}/launch', glob('launch/*.launch.py')),
        (f'share/{PACKAGE}/config', glob('config/*.yaml') + glob('config/*.xml')
         + glob('config/*.rviz')),
    ],
    # only the shipped model and its metric attribute head; ancestors live in git history
    package_data={PACKAGE: ['weights/unipixel_sim_v5.safetensors',
                            'weights/unipixel_sim_v5_metric_attributes.safetensors',
                            'weights/MODEL_CARD.md']},
    install_requires=['setuptools', 'numpy', 'scipy', 'tqdm'],
    zip_safe=True,
    maintainer='unipixel_ros developers',
    maintainer_email='dev@unipixel-ros.org',
    description='Language-conditioned referring segmentation and grasping for ROS 2.',
    license='Apache-2.0',
    # colcon test reads test dependencies from here (setuptools >= 72 ignores tests_require)
    extras_require={'test': ['pytest', 'pytest-timeout']},
    entry_points={
        'console_scripts': [
            'unipixel-ros = unipixel_ros.cli:main',
            'unipixel_node = unipixel_ros.ros.unipixel_node:main',
        ],
    },
)
