"""Data loading: image folders and CIFAR-10 (``images``), text files and IMDB
(``text``)."""

from attention_zoo.data.images import (CIFAR10_CLASSES, ImageSet, cifar10,
                                       image_folder, pipeline,
                                       split_last_per_class)
from attention_zoo.data.text import (TextSet, build_vocabulary, imdb,
                                     stratified_split, text_tsv)
from attention_zoo.data.text import pipeline as text_pipeline

__all__ = ["CIFAR10_CLASSES", "ImageSet", "TextSet", "build_vocabulary",
           "cifar10", "image_folder", "imdb", "pipeline", "split_last_per_class",
           "stratified_split", "text_pipeline", "text_tsv"]
