"""ament_python package ``unipixel_sim`` (also pip-installable into the project venv)."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'unipixel_sim'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{PACKAGE}']),
        (f'share/{PACKAGE}', ['package.xml']),
        (f'share/{PACKAGE}/launch', glob('launch/*.launch.py')),
        (f'share/{PACKAGE}/config', glob('config/*.yaml')),
    ],
    install_requires=['setuptools', 'numpy'],
    zip_safe=True,
    maintainer='unipixel_ros developers',
    maintainer_email='dev@unipixel-ros.org',
    description='MuJoCo tabletop simulation, dataset generation and grasp evaluation for unipixel_ros.',
    license='Apache-2.0',
    # colcon test reads test dependencies from here (setuptools >= 72 ignores tests_require)
    extras_require={'test': ['pytest', 'pytest-timeout']},
    entry_points={'console_scripts': [
        'unipixel-sim = unipixel_sim.cli:main',
        'sim_camera = unipixel_sim.nodes.sim_camera:main',
        'grasp_executor = unipixel_sim.nodes.grasp_executor_node:main',
    ]},
)
