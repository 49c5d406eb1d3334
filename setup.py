"""ament_python package `aiat_perception`, also pip-installable.

The vehicle runtime (`aiat_perception`) needs numpy, OpenCV, PyYAML and ONNX Runtime besides ROS 2;
the offline stack (`aiat_training`) comes with `pip install .[training]`.
"""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'aiat_perception'


def requirements(name):
    with open(f'requirements/{name}.txt') as f:
        return [line.split('#')[0].strip() for line in f if line.split('#')[0].strip()]


setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(include=['aiat_perception', 'aiat_perception.*',
                                    'aiat_training', 'aiat_training.*']),
    package_data={'aiat_perception': ['resources/*']},
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{PACKAGE}']),
        (f'share/{PACKAGE}', ['package.xml']),
        (f'share/{PACKAGE}/launch', glob('launch/*.launch.py')),
        (f'share/{PACKAGE}/config', glob('config/*.yaml')),
        (f'share/{PACKAGE}/config/launch', glob('config/launch/*.yaml')),
        (f'share/{PACKAGE}/config/scenarios', glob('config/scenarios/*.yaml')),
    ],
    python_requires='>=3.10',
    install_requires=['numpy>=1.21', 'pyyaml'],
    extras_require={
        'runtime': requirements('runtime'),
        'sim': requirements('sim'),
        'training': requirements('training') + requirements('sim'),
        'test': requirements('test'),
        # offline evaluation of recorded drives (aiat-eval): bags, pycocotools, plots, HTML report
        'eval': requirements('eval'),
        # native TensorRT engines on x86_64 (on a Jetson, TensorRT and CUDA come with JetPack)
        'tensorrt': requirements('tensorrt'),
        'gpu-diagnostics': ['nvidia-ml-py'],
        # training-side TensorRT export for models ONNX cannot express (needs an NVIDIA GPU)
        'trt-export': requirements('trt-export'),
    },
    zip_safe=True,
    maintainer='AIAT Perception developers',
    maintainer_email='dev@aiat-perception.example',
    description='Camera/lidar perception nodes, simulation loop and detector training.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            # ROS 2 nodes (`ros2 run aiat_perception <name>`)
            'camera_detector = aiat_perception.nodes.camera_detector:main',
            'image_publisher = aiat_perception.nodes.image_publisher:main',
            'detection_listener = aiat_perception.nodes.detection_listener:main',
            'sim = aiat_perception.nodes.sim_node:main',
            'iou_monitor = aiat_perception.nodes.iou_monitor:main',
            'lidar_detector = aiat_perception.nodes.lidar_detector:main',
            'scan_detector = aiat_perception.nodes.scan_detector:main',
            'fusion = aiat_perception.nodes.fusion:main',
            # tools
            'aiat-launch = aiat_perception.launcher:main',
            'aiat-detect = aiat_perception.cli.detect:main',
            'aiat-engine = aiat_perception.engine.cli:main',
            'aiat-lidar = aiat_perception.cli.lidar:main',
            'aiat-eval = aiat_training.replay_eval.cli:main',
            'aiat-sim = aiat_perception.cli.sim_record:main',
            'aiat-data = aiat_training.cli.data:main',
            'aiat-train = aiat_training.cli.train:main',
        ],
    },
)
