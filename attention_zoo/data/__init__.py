"""Data loading: image folders and CIFAR-10 (``images``)."""

from attention_zoo.data.images import (CIFAR10_CLASSES, ImageSet, cifar10,
                                       image_folder, pipeline,
                                       split_last_per_class)

__all__ = ["CIFAR10_CLASSES", "ImageSet", "cifar10", "image_folder", "pipeline",
           "split_last_per_class"]
