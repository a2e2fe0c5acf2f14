"""Data loading: image folders and CIFAR-10 (``images``), text files and IMDB
(``text``), and the checks of users' image batches and labels."""

from attention_zoo.data.images import (CIFAR10_CLASSES, ImageSet, check_image_batch,
                                       cifar10, holdout_per_class, image_folder,
                                       labelled_images, pipeline,
                                       split_last_per_class)
from attention_zoo.data.text import (TextSet, build_vocabulary, check_labels, imdb,
                                     infer_num_classes, stratified_split, text_tsv)
from attention_zoo.data.text import pipeline as text_pipeline

__all__ = ["CIFAR10_CLASSES", "ImageSet", "TextSet", "build_vocabulary",
           "check_image_batch", "check_labels", "cifar10", "holdout_per_class",
           "image_folder", "imdb", "infer_num_classes", "labelled_images",
           "pipeline", "split_last_per_class", "stratified_split", "text_pipeline",
           "text_tsv"]
