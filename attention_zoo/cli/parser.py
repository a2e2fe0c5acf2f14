"""The argument parser of every ``attention-zoo`` command."""

from __future__ import annotations

import argparse
from typing import NoReturn

from attention_zoo.cli.common import (add_tta, agreement, attention_argument,
                                      count_or_auto, fraction, jit_argument,
                                      positive_float, positive_int, rate)
from attention_zoo.cli.ensemble import cmd_ensemble, cmd_ship
from attention_zoo.cli.export import cmd_export
from attention_zoo.cli.train import cmd_train
from attention_zoo.cli.tune import cmd_tune
from attention_zoo.cli.use import cmd_demo, cmd_evaluate, cmd_layers, cmd_predict
from attention_zoo.data.tokenizer import TRUNCATIONS


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (and exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="attention-zoo",
        description="Attention layers and attention models for Keras 3. An input "
                    "error prints one line and exits with status 2.")
    parser.add_argument("--debug", action="store_true",
                        help="show Python tracebacks (also ATTENTION_ZOO_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("layers",
                       help="build a model from every layer, run it, print a table")
    p.add_argument("--width", type=positive_int, default=64,
                   help="channels / features of the example inputs")
    p.set_defaults(run=cmd_layers)

    p = sub.add_parser("demo", help="the layer table, then every shipped model "
                                    "on the repository's sample inputs")
    p.add_argument("--out", default="demo_output",
                   help="folder for attention plots and highlights (the demo's "
                        "<model>.png / .html there are replaced on every run)")
    p.set_defaults(run=cmd_demo)

    p = sub.add_parser("train", help="train a zoo model")
    p.add_argument("model", help="zoo model: attn_cnn, attn_text or nb_text")
    p.add_argument("--data", help="attn_cnn: image folder or zip (train/<class>/"
                   "*.jpg), default keras.datasets.cifar10 (downloads); "
                   "attn_text: label<TAB>text file, default keras.datasets.imdb")
    p.add_argument("--out", required=True,
                   help="run folder: new or empty; one holding an unfinished run "
                        "with the same arguments resumes it")
    p.add_argument("--overwrite", action="store_true",
                   help="start over in a run folder that holds a run (finished or "
                        "not); removes only the files training writes there")
    p.add_argument("--recipe", help="training.RECIPES name (default: "
                                    "cifar10_select for attn_cnn, text for "
                                    "attn_text; cifar10 trains attn_cnn on "
                                    "every example)")
    p.add_argument("--epochs", type=positive_int)
    p.add_argument("--batch-size", type=positive_int)
    p.add_argument("--lr", type=positive_float, help="peak learning rate")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override any recipe field, e.g. --set ema_momentum=0.999")
    p.add_argument("--attention", type=attention_argument, default="cbam",
                   help="feature-map layer name, 'none', or one per stage a,b,c")
    # AttnCNN's own arguments: left None unless given, so the model's
    # signature is the one place their defaults live.
    p.add_argument("--width", type=positive_int, nargs="+",
                   help="attn_cnn: filters of each stage (default 112 352 352)")
    p.add_argument("--stem-width", type=positive_int)
    p.add_argument("--stem", choices=["conv", "whiten"],
                   help="attn_cnn first layer: patch whitening set from the "
                        "training images (default), or a 3x3 conv")
    p.add_argument("--dirac", action=argparse.BooleanOptionalAction,
                   help="attn_cnn: identity-initialize the 3x3 convs (default on)")
    p.add_argument("--bn-scale", action=argparse.BooleanOptionalAction,
                   help="attn_cnn: BatchNormalization learns a scale (default off)")
    p.add_argument("--bn-momentum", type=fraction)
    p.add_argument("--residual-attention", action=argparse.BooleanOptionalAction,
                   help="attn_cnn: stages output x + attention(x) (default on)")
    p.add_argument("--activation", choices=["gelu", "relu"],
                   help="attn_cnn: activation after each BatchNormalization (default relu)")
    p.add_argument("--precision", default="auto",
                   choices=["auto", "float32", "mixed_float16", "mixed_bfloat16"])
    p.add_argument("--jit-compile", type=jit_argument, default="auto",
                   help="auto, on or off")
    p.add_argument("--val-per-class", type=count_or_auto, metavar="N|auto",
                   help="images: hold out the last N of each class (default auto: "
                        "500 where every class has more, else about a tenth)")
    p.add_argument("--train-per-class", type=positive_int,
                   help="use only the first N training images of each class")
    p.add_argument("--seed", type=int, default=0)
    text = p.add_argument_group("attn_text and nb_text")
    text.add_argument("--val-data", help="a separate validation file (SST-2 dev)")
    text.add_argument("--extra-data", action="append", default=[], metavar="PATH",
                      help="more label<TAB>text files added to the training "
                           "texts only (repeatable; same labels as --data)")
    text.add_argument("--split-contractions", action="store_true",
                      help="split contractions as Penn Treebank does before "
                           "punctuation goes (doesn't -> does nt), so raw text "
                           "reads like SST-2's tokenized text")
    text.add_argument("--val-fraction", type=fraction, default=0.1,
                      help="else hold out this stratified, seeded fraction")
    text.add_argument("--split-seed", type=int, default=0,
                      help="seed of that split (--seed varies the training "
                           "only, so runs stay comparable and can be ensembled)")
    text.add_argument("--encoder", default="bigru",
                      choices=["bigru", "transformer", "none"])
    text.add_argument("--text-attention", default="additive",
                      choices=["pooling", "additive", "dot", "mha"])
    text.add_argument("--vocab-size", type=positive_int, default=20000)
    text.add_argument("--max-length", type=positive_int,
                      help="tokens kept per text (default: attn_text 128, "
                           "nb_text 8000 n-gram ids)")
    text.add_argument("--ngrams", type=positive_int)
    text.add_argument("--truncating", default="post", choices=TRUNCATIONS,
                      help="keep the first (post) or last (pre) --max-length "
                           "tokens of longer texts")
    text.add_argument("--embed-dim", type=positive_int, default=128)
    text.add_argument("--hidden", type=positive_int, default=64)
    text.add_argument("--dropout", type=rate, default=0.3)
    text.add_argument("--class-names", nargs="+",
                      help="label names in order, e.g. negative positive")
    p.add_argument("--strategy", choices=["mirrored", "multiworker"],
                   help="mirrored: every local device (tf.distribute on TensorFlow, "
                        "keras.distribution.DataParallel on JAX); multiworker: the "
                        "TF_CONFIG cluster (TensorFlow)")
    p.add_argument("--ship", metavar="NAME",
                   help="also write weights and model card to saved_models/NAME "
                        "(--overwrite replaces a model shipped under NAME)")
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("ensemble", help="average finished training runs into "
                                        "one model; evaluate and ship it")
    p.add_argument("runs", nargs="+", help="folders of `attention-zoo train` runs")
    p.add_argument("--out", required=True, help="folder for summary.json")
    p.add_argument("--data", help="the runs' --data (their validation split is "
                                  "evaluated)")
    p.add_argument("--val-data", help="text: the runs' --val-data")
    p.add_argument("--val-fraction", type=fraction, default=0.1)
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--val-per-class", type=positive_int,
                   help="images: the runs' --val-per-class")
    p.add_argument("--ship", metavar="NAME",
                   help="also write weights and model card to saved_models/NAME")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a model already shipped as NAME")
    p.set_defaults(run=cmd_ensemble)

    p = sub.add_parser("ship", help="write a finished run's model and card to "
                                    "saved_models/NAME")
    p.add_argument("folder", metavar="RUN", help="folder of an `attention-zoo train` run")
    p.add_argument("name", help="the shipped model's name (a plain folder name)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a model already shipped as NAME")
    p.set_defaults(run=cmd_ship)

    p = sub.add_parser("evaluate", help="validation accuracy of a model")
    p.add_argument("model", help="shipped model name or .keras file")
    p.add_argument("--data", help="image folder or zip (default keras.datasets), "
                                  "or a label<TAB>text file for a text model")
    p.add_argument("--val-per-class", type=positive_int,
                   help="images: evaluate only the last N of each class (default: "
                        "every image of --data; without --data CIFAR-10's 500)")
    add_tta(p)
    p.add_argument("--val-fraction", type=fraction,
                   help="text: evaluate the seeded stratified split that "
                        "training held out (IMDB: 0.1); default the whole file")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=cmd_evaluate)

    p = sub.add_parser("predict", help="classify images or texts, show attention")
    p.add_argument("model", help="shipped model name or .keras file")
    p.add_argument("inputs", nargs="+", help="image files, or texts for a text model")
    p.add_argument("--top", type=positive_int, default=3,
                   help="classes (images) or most-attended tokens (texts) shown")
    add_tta(p, " of images")
    p.add_argument("--plot", help="write the attention maps here (PNG for "
                                  "images, HTML for texts)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --plot file")
    p.set_defaults(run=cmd_predict)

    p = sub.add_parser("tune", help="KerasTuner search of a zoo model's hypermodel")
    p.add_argument("model", help="attn_cnn, attn_resnet (images) or attn_text")
    p.add_argument("--data", help="images: folder or zip; text: label<TAB>text file")
    p.add_argument("--tuner", default="hyperband", choices=["random", "bayesian",
                                                            "hyperband"])
    p.add_argument("--max-trials", type=positive_int, default=20,
                   help="random/bayesian trials (hyperband: set by --max-epochs)")
    p.add_argument("--max-epochs", type=positive_int, default=9)
    p.add_argument("--dir", required=True, help="search folder (resumes if present)")
    p.add_argument("--subset", type=positive_int, help="use this many training images")
    p.add_argument("--val-per-class", type=positive_int, default=500,
                   help="images: validation = the last N of each class")
    p.add_argument("--space", help='JSON narrowing the search space, e.g. '
                                   '\'{"attention": ["se", "cbam"], "depth": 3}\'')
    p.add_argument("--batch-size", type=positive_int, default=128)
    p.add_argument("--vocab-size", type=positive_int, default=20000)
    p.add_argument("--max-length", type=positive_int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--distributed", action="store_true",
                   help="run as KerasTuner chief/worker (KERASTUNER_* variables)")
    p.add_argument("--precision", default="auto",
                   choices=["auto", "float32", "mixed_float16", "mixed_bfloat16"])
    p.add_argument("--verbose", action="store_true")
    p.set_defaults(run=cmd_tune)

    p = sub.add_parser("export", help="export to SavedModel, TFLite or ONNX, verified")
    p.add_argument("model", help="shipped model name or .keras file")
    p.add_argument("--format", required=True, choices=["saved_model", "tflite", "onnx"])
    p.add_argument("--quantize", choices=["float16", "int8"])
    p.add_argument("--out", required=True,
                   help="tflite, onnx: the file to write (not a folder); saved_model: "
                        "the folder to write. An existing one is refused unless "
                        "--overwrite")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out file and the report and tokenizer "
                        "files beside it; a saved_model folder only if attention-zoo "
                        "exported it")
    p.add_argument("--data", help="int8: image folder or zip (label<TAB>text "
                                  "file for a text model) to calibrate on")
    p.add_argument("--calibration", type=positive_int, default=256,
                   help="int8: images or texts drawn from --data; every 5th is held "
                        "back from calibration to check the int8 file (default 256)")
    p.add_argument("--min-agreement", type=agreement, default=0.9,
                   help="int8: fail, writing nothing, if the int8 file picks the "
                        "float model's top class on fewer than this fraction of the "
                        "held-back inputs (default 0.9)")
    batch = p.add_mutually_exclusive_group()
    batch.add_argument("--dynamic-batch", action="store_true",
                       help="a dynamic batch dimension (the default for onnx and "
                            "saved_model)")
    batch.add_argument("--fixed-batch", action="store_true",
                       help="a fixed batch of 1 (the default for tflite, for mobile "
                            "runtimes)")
    add_tta(p, " built into the exported file (one pass per view)")
    p.set_defaults(run=cmd_export)
    return parser
