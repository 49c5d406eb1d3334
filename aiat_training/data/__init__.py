"""Training data: readers for KITTI/BDD100K/Cityscapes/COCO/YOLO/VOC, class mapping, report, split,
augmentation and the torch training dataset. Import the submodules you need (torch and
albumentations are only imported by ``loader``/``augment``/``preview``)."""
from aiat_training.data.classmap import ClassMapping, ClassMappingError
from aiat_training.data.dataset import DetectionDataset, Sample, read_file_list
from aiat_training.data.issues import DatasetError, ReadIssue
from aiat_training.data.readers import FORMATS, read_dataset

__all__ = ['ClassMapping', 'ClassMappingError', 'DetectionDataset', 'Sample', 'read_file_list',
           'DatasetError', 'ReadIssue', 'FORMATS', 'read_dataset']
