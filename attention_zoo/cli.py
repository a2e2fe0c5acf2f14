"""The ``attention-zoo`` command: layers, train, evaluate, predict."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Sequence


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def cmd_layers(args: argparse.Namespace) -> int:
    from attention_zoo.layers import catalog

    rows = catalog.describe_all(width=args.width)
    print(catalog.format_table(rows))
    print(f"\n{len(rows)} layers built, run on random inputs and finite.")
    return 0


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
DEMO_TEXTS = ["a gripping , beautifully acted film", "dull , lifeless and far too long",
              "not bad at all", "i wanted my two hours back"]


def cmd_demo(args: argparse.Namespace) -> int:
    """The README's main job: every layer, then each shipped model on the
    sample inputs kept in the repository. Nothing is downloaded."""
    from attention_zoo import models

    cmd_layers(argparse.Namespace(width=64))
    shipped = models.pretrained()
    print(f"\nshipped models: {', '.join(shipped) or 'none'}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    images = sorted(str(p) for p in (EXAMPLES / "images").glob("*.jpg"))
    for name in shipped:
        print(f"\n== {name}")
        kind = models.card(name)["model"]
        inputs = images if kind == "attn_cnn" else DEMO_TEXTS
        suffix = "png" if kind == "attn_cnn" else "html"
        cmd_predict(argparse.Namespace(model=name, inputs=inputs, top=3,
                                       plot=str(out / f"{name}.{suffix}")))
    return 0


def _jit(value: str) -> bool | str:
    lowered = value.lower()
    if lowered in ("auto",):
        return "auto"
    if lowered in ("1", "true", "on", "yes"):
        return True
    if lowered in ("0", "false", "off", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected auto, on or off, received {value!r}")


def _attention(value: str) -> str | None | list:
    if value.lower() == "none":
        return None
    if "," in value:
        return [None if v.lower() == "none" else v for v in value.split(",")]
    return value


def cmd_train(args: argparse.Namespace) -> int:
    import keras

    trainers = {"attn_cnn": _train_images, "attn_text": _train_text}
    if args.model not in trainers:
        raise SystemExit(f"attention-zoo train: unknown model {args.model!r}; "
                         f"known: {', '.join(trainers)}")
    if args.strategy:
        from attention_zoo import training

        # MultiWorkerMirroredStrategy must exist before any TensorFlow work.
        args.strategy = training.get_strategy(args.strategy)
    keras.utils.set_random_seed(args.seed)
    return trainers[args.model](args)


def _recipe(args: argparse.Namespace, default: str):
    from attention_zoo import training

    changes = {k: v for k, v in {"epochs": args.epochs, "batch_size": args.batch_size,
                                 "learning_rate": args.lr}.items() if v is not None}
    recipe = training.get_recipe(args.recipe or default, **changes)
    return recipe.replace(**dict(_recipe_field(recipe, item) for item in args.set))


def _recipe_field(recipe, item: str) -> tuple:
    """``FIELD=VALUE`` of ``--set``, converted to the field's type."""
    field, _, value = item.partition("=")
    if not hasattr(recipe, field) or not value:
        raise SystemExit(f"--set expects FIELD=VALUE with a recipe field "
                         f"({', '.join(recipe.__dataclass_fields__)}), received {item!r}")
    current = getattr(recipe, field)
    if isinstance(current, bool):
        return field, value.lower() in ("1", "true", "yes", "on")
    return field, type(current)(value)


def _finish(args: argparse.Namespace, result, recipe, model_name: str,
            config: dict, data_text: str, train_size: int, extra: dict,
            files: dict | None = None) -> int:
    """Writes summary.json (the model card) and ships the model if asked."""
    import dataclasses

    from attention_zoo import __version__, training
    from attention_zoo.models.cards import machine, ship

    if not training.is_chief(args.strategy):
        return 0  # workers of a multi-worker run leave the files to the chief
    history = _history_csv(Path(args.out) / "history.csv")
    seconds = history.get("epoch_seconds", [])
    summary = {
        "model": model_name, "config": config, "data": data_text,
        "recipe": dataclasses.asdict(recipe),
        "command": "attention-zoo " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "epochs": recipe.epochs,
        "wall_seconds": round(sum(seconds), 1),
        "train_examples_per_second": round(train_size * len(seconds)
                                           / max(sum(seconds), 1e-9), 1),
        "precision": result.precision, "jit_compile": result.jit_compile,
        "machine": machine(),
        "val_accuracy": None if result.val_accuracy is None
        else round(result.val_accuracy, 4),
        **extra,
        "params": result.model.count_params(),
        "package_version": __version__,
        "date": time.strftime("%Y-%m-%d"),
    }
    (Path(args.out) / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    if args.ship:
        folder = ship(result.model, args.ship, summary, files=files)
        print(f"shipped to {folder}")
    return 0


def _train_images(args: argparse.Namespace) -> int:
    from attention_zoo import data, training
    from attention_zoo.models import AttnCNN

    train_set, val_set = data.cifar10(args.data, val_per_class=args.val_per_class)
    if args.train_per_class:
        train_set = _per_class(train_set, args.train_per_class)
    print(f"data: {len(train_set)} training and {len(val_set)} validation images, "
          f"{len(train_set.class_names)} classes")
    recipe = _recipe(args, "cifar10")
    train_ds = data.pipeline(train_set, recipe.batch_size, training=True,
                             translate=recipe.translate, flip=recipe.flip,
                             cutout=recipe.cutout, seed=args.seed)
    val_ds = data.pipeline(val_set, 1000)
    config = {"input_shape": [32, 32, 3], "num_classes": len(train_set.class_names),
              "attention": args.attention, "width": list(args.width),
              "stem_width": args.stem_width}
    result = training.fit(lambda: AttnCNN(**config), train_ds, val_ds, recipe=recipe,
                          out_dir=args.out, precision=args.precision,
                          jit_compile=args.jit_compile, train_size=len(train_set),
                          strategy=args.strategy)
    plain = (None if result.val_accuracy is None
             else round(training.evaluate(result.model, val_ds, tta=False), 4))
    return _finish(args, result, recipe, "attn_cnn", config,
                   f"{args.data or 'keras.datasets.cifar10'}: {len(train_set)} "
                   f"training images; validation = last {args.val_per_class} "
                   f"images of each class ({len(val_set)})", len(train_set),
                   {"val_accuracy_without_tta": plain,
                    "val_accuracy_reported": "with flip TTA" if recipe.tta
                    else "without TTA"})


def _train_text(args: argparse.Namespace) -> int:
    from attention_zoo import data, training
    from attention_zoo.data.text import build_vocabulary, write_vocabulary
    from attention_zoo.models import AttnTextClassifier

    if args.data is None:
        train_set, val_set = data.imdb(None, args.val_fraction, args.seed)
        source = "keras.datasets.imdb"
    elif args.val_data:
        train_set, val_set = data.text_tsv(args.data), data.text_tsv(args.val_data)
        source = f"{args.data}; validation {args.val_data}"
    else:
        train_set, val_set = data.stratified_split(data.text_tsv(args.data),
                                                   args.val_fraction, args.seed)
        source = (f"{args.data}; validation = seeded stratified "
                  f"{args.val_fraction:.0%} (seed {args.seed})")
    classes = int(max(train_set.labels.max(), val_set.labels.max())) + 1
    print(f"data: {len(train_set)} training and {len(val_set)} validation texts, "
          f"{classes} classes")
    vocabulary = build_vocabulary(train_set.texts, args.vocab_size, args.ngrams)
    recipe = _recipe(args, "text")
    config = {"num_classes": classes, "max_length": args.max_length,
              "ngrams": args.ngrams, "encoder": args.encoder,
              "attention": args.text_attention, "embed_dim": args.embed_dim,
              "hidden": args.hidden, "dropout": args.dropout}
    train_ds = data.text_pipeline(train_set, recipe.batch_size, training=True,
                                  num_classes=classes, seed=args.seed)
    val_ds = data.text_pipeline(val_set, 256, num_classes=classes)
    result = training.fit(lambda: AttnTextClassifier(vocabulary=vocabulary, **config),
                          train_ds, val_ds, recipe=recipe, out_dir=args.out,
                          precision=args.precision, jit_compile=args.jit_compile,
                          train_size=len(train_set), strategy=args.strategy)
    write_vocabulary(vocabulary, Path(args.out) / "vocab.txt")
    return _finish(args, result, recipe, "attn_text",
                   {**config, "vocabulary": "vocab.txt"},
                   f"{source}: {len(train_set)} training texts, {len(val_set)} "
                   f"validation texts", len(train_set),
                   {"vocabulary_size": len(vocabulary) + 2,
                    "class_names": args.class_names or [str(i) for i in range(classes)]},
                   files={"vocab.txt": Path(args.out) / "vocab.txt"})


def _per_class(data_set, n: int):
    import numpy as np

    index = np.concatenate([np.flatnonzero(data_set.labels == c)[:n]
                            for c in range(len(data_set.class_names))])
    return data_set.take(np.sort(index))


def _history_csv(path: Path) -> dict[str, list[float]]:
    import csv

    if not path.is_file():
        return {}
    with path.open() as f:
        rows = list(csv.DictReader(f))
    # A resumed run appends; keep the last row of each epoch.
    by_epoch = {int(r["epoch"]): r for r in rows}
    columns: dict[str, list[float]] = {}
    for _, row in sorted(by_epoch.items()):
        for key, value in row.items():
            try:
                columns.setdefault(key, []).append(float(value))
            except (TypeError, ValueError):
                pass
    return columns


def _load_model(name_or_path: str):
    import keras

    import attention_zoo  # noqa: F401  (registers layers for loading)
    from attention_zoo import models

    if os.path.exists(name_or_path):
        return keras.saving.load_model(name_or_path, safe_mode=True)
    return models.load(name_or_path)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from attention_zoo import data, training

    model = _load_model(args.model)
    _, val_set = data.cifar10(args.data, val_per_class=args.val_per_class)
    val_ds = data.pipeline(val_set, 1000)
    accuracy = training.evaluate(model, val_ds, tta=args.tta)
    print(json.dumps({"model": args.model, "images": len(val_set),
                      "tta": args.tta, "val_accuracy": round(accuracy, 4)}))
    return 0


def _class_names(args: argparse.Namespace, classes: int) -> list[str]:
    from attention_zoo import models

    if not os.path.exists(args.model):
        names = models.card(args.model).get("class_names")
        if names and len(names) == classes:
            return list(names)
    return [str(i) for i in range(classes)]


def cmd_predict(args: argparse.Namespace) -> int:
    model = _load_model(args.model)
    if model.inputs[0].dtype == "string":
        return _predict_text(args, model)
    return _predict_images(args, model)


def _predict_text(args: argparse.Namespace, model) -> int:
    import numpy as np

    from attention_zoo import inspect

    probabilities = model.predict(list(args.inputs), verbose=0)
    names = _class_names(args, probabilities.shape[-1])
    explanations = inspect.explain_text(model, list(args.inputs))
    captions = []
    for text, p, tokens in zip(args.inputs, probabilities, explanations):
        best = int(np.argmax(p))
        top = sorted(tokens, key=lambda t: -t[1])[:args.top]
        caption = f"{names[best]} {p[best]:.3f}"
        captions.append(caption)
        shown = text if len(text) <= 80 else text[:77] + "..."
        print(f"{shown!r}: {caption}; most attended: "
              + ", ".join(f"{t} {w:.2f}" for t, w in top))
    if args.plot:
        path = inspect.highlight_html(explanations, args.plot, captions)
        print(f"attention highlights: {path}")
    return 0


def _predict_images(args: argparse.Namespace, model) -> int:
    import numpy as np
    import tensorflow as tf

    from attention_zoo import inspect
    from attention_zoo.data.images import CIFAR10_CLASSES

    images = []
    for path in args.inputs:
        try:
            image = tf.io.decode_image(Path(path).read_bytes(), channels=3,
                                       expand_animations=False)
        except (OSError, tf.errors.InvalidArgumentError) as error:
            raise SystemExit(f"attention-zoo predict: cannot read image "
                             f"{path!r}: {error}")
        size = tuple(model.inputs[0].shape[1:3])
        if tuple(image.shape[:2]) != size:
            image = tf.image.resize(image, size, antialias=True)
        images.append(np.asarray(image, np.float32))
    batch = np.stack(images)
    probabilities = model.predict(batch, verbose=0)
    names = (list(CIFAR10_CLASSES) if probabilities.shape[-1] == 10
             else _class_names(args, probabilities.shape[-1]))
    titles = []
    for path, p in zip(args.inputs, probabilities):
        top = np.argsort(p)[::-1][:args.top]
        titles.append(f"{names[top[0]]} {p[top[0]]:.2f}")
        print(f"{path}: " + ", ".join(f"{names[i]} {p[i]:.3f}" for i in top))
    if args.plot:
        written = inspect.plot_attention(model, batch, args.plot, titles=titles)
        print(f"attention maps: {written}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import numpy as np

    from attention_zoo import export

    model = _load_model(args.model)
    representative = None
    if args.quantize == "int8":
        if not args.data:
            raise SystemExit("attention-zoo export: --quantize int8 needs --data "
                             "(training images or texts to calibrate on)")
        from attention_zoo import data

        rng = np.random.default_rng(0)
        if model.inputs[0].dtype == "string":
            texts = data.text_tsv(args.data).texts
            pick = rng.choice(len(texts), min(args.calibration, len(texts)),
                              replace=False)
            representative = [[texts[i] for i in pick]]
        else:
            train_set, _ = data.cifar10(args.data)
            pick = rng.choice(len(train_set), args.calibration, replace=False)
            representative = [train_set.images[pick].astype("float32")]
    try:
        report = export.export(model, args.out, format=args.format,
                               quantize=args.quantize,
                               representative_data=representative,
                               batch_size=None if args.dynamic_batch else 1)
    except (ValueError, TypeError, export.ExportError) as error:
        raise SystemExit(f"attention-zoo export: {error}")
    print(json.dumps(report, indent=2, default=str))
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from attention_zoo import data, tuning

    if args.distributed:
        missing = [v for v in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP",
                               "KERASTUNER_ORACLE_PORT") if v not in os.environ]
        if missing:
            raise SystemExit(f"attention-zoo tune --distributed: set {missing} "
                             f"(KerasTuner's chief/worker variables)")
    elif "KERASTUNER_TUNER_ID" in os.environ:
        raise SystemExit("attention-zoo tune: KerasTuner's distributed variables "
                         "are set; pass --distributed to use them")
    space = json.loads(args.space) if args.space else {}
    if args.model == "attn_cnn":
        train_set, val_set = data.cifar10(args.data, val_per_class=args.val_per_class)
        if args.subset:
            train_set = _per_class(train_set, args.subset // len(train_set.class_names))
        train = (train_set.images.astype("float32"), train_set.labels)
        val = (val_set.images.astype("float32"), val_set.labels)
        kwargs = {"num_classes": len(train_set.class_names), "space": space}
    elif args.model == "attn_text":
        from attention_zoo.data.text import build_vocabulary

        rows = data.text_tsv(args.data)
        train_set, val_set = data.stratified_split(rows, 0.1, args.seed)
        vocabulary = build_vocabulary(train_set.texts, args.vocab_size)
        from attention_zoo.models.text import as_text_tensor as as_tensor

        train = (as_tensor(list(train_set.texts)), train_set.labels)
        val = (as_tensor(list(val_set.texts)), val_set.labels)
        kwargs = {"vocabulary": vocabulary, "num_classes": int(rows.labels.max()) + 1,
                  "max_length": args.max_length, "space": space}
    else:
        raise SystemExit(f"attention-zoo tune: unknown model {args.model!r}; known: "
                         f"attn_cnn, attn_text")
    print(f"search: {args.tuner} over {args.model}, {len(train[1])} training and "
          f"{len(val[1])} validation examples, directory {args.dir}")
    result = tuning.search(args.model, train, val, tuner=args.tuner,
                           max_trials=args.max_trials, max_epochs=args.max_epochs,
                           directory=args.dir, hypermodel_kwargs=kwargs,
                           batch_size=args.batch_size, seed=args.seed,
                           verbose=1 if args.verbose else 0, precision=args.precision)
    print(result["table"])
    if "best_model" in result:
        print(f"best model: {result['best_model']}  "
              f"({json.dumps(result['best_hyperparameters'], default=str)})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attention-zoo",
        description="Attention layers and attention models for Keras 3.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("layers",
                       help="build a model from every layer, run it, print a table")
    p.add_argument("--width", type=int, default=64,
                   help="channels / features of the example inputs")
    p.set_defaults(run=cmd_layers)

    p = sub.add_parser("demo", help="the layer table, then every shipped model "
                                    "on the repository's sample inputs")
    p.add_argument("--out", default="demo_output",
                   help="folder for attention plots and highlights")
    p.set_defaults(run=cmd_demo)

    p = sub.add_parser("train", help="train a zoo model")
    p.add_argument("model", help="zoo model: attn_cnn or attn_text")
    p.add_argument("--data", help="attn_cnn: image folder or zip (train/<class>/"
                   "*.jpg), default keras.datasets.cifar10 (downloads); "
                   "attn_text: label<TAB>text file, default keras.datasets.imdb")
    p.add_argument("--out", required=True, help="run folder (resumes if present)")
    p.add_argument("--recipe", help="training.RECIPES name (default: cifar10 "
                                    "or text)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, help="peak learning rate")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override any recipe field, e.g. --set ema_momentum=0.999")
    p.add_argument("--attention", type=_attention, default="cbam",
                   help="feature-map layer name, 'none', or one per stage a,b,c")
    p.add_argument("--width", type=int, nargs="+", default=[64, 256, 256])
    p.add_argument("--stem-width", type=int, default=32)
    p.add_argument("--precision", default="auto",
                   choices=["auto", "float32", "mixed_float16", "mixed_bfloat16"])
    p.add_argument("--jit-compile", type=_jit, default="auto",
                   help="auto, on or off")
    p.add_argument("--val-per-class", type=int, default=500)
    p.add_argument("--train-per-class", type=int,
                   help="use only the first N training images of each class")
    p.add_argument("--seed", type=int, default=0)
    text = p.add_argument_group("attn_text")
    text.add_argument("--val-data", help="a separate validation file (SST-2 dev)")
    text.add_argument("--val-fraction", type=float, default=0.1,
                      help="else hold out this stratified, seeded fraction")
    text.add_argument("--encoder", default="bigru",
                      choices=["bigru", "transformer", "none"])
    text.add_argument("--text-attention", default="additive",
                      choices=["pooling", "additive", "dot", "mha"])
    text.add_argument("--vocab-size", type=int, default=20000)
    text.add_argument("--max-length", type=int, default=128)
    text.add_argument("--ngrams", type=int)
    text.add_argument("--embed-dim", type=int, default=128)
    text.add_argument("--hidden", type=int, default=64)
    text.add_argument("--dropout", type=float, default=0.3)
    text.add_argument("--class-names", nargs="+",
                      help="label names in order, e.g. negative positive")
    p.add_argument("--strategy", choices=["mirrored", "multiworker"],
                   help="tf.distribute: local replicas, or the TF_CONFIG cluster")
    p.add_argument("--ship", metavar="NAME",
                   help="also write weights and model card to saved_models/NAME")
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("evaluate", help="validation accuracy of a model")
    p.add_argument("model", help="shipped model name or .keras file")
    p.add_argument("--data", help="image folder or zip; default keras.datasets")
    p.add_argument("--val-per-class", type=int, default=500)
    p.add_argument("--tta", action="store_true", help="flip test-time augmentation")
    p.set_defaults(run=cmd_evaluate)

    p = sub.add_parser("predict", help="classify images or texts, show attention")
    p.add_argument("model", help="shipped model name or .keras file")
    p.add_argument("inputs", nargs="+", help="image files, or texts for a text model")
    p.add_argument("--top", type=int, default=3,
                   help="classes (images) or most-attended tokens (texts) shown")
    p.add_argument("--plot", help="write the attention maps here (PNG for "
                                  "images, HTML for texts)")
    p.set_defaults(run=cmd_predict)

    p = sub.add_parser("tune", help="KerasTuner search of a zoo model's hypermodel")
    p.add_argument("model", help="attn_cnn or attn_text")
    p.add_argument("--data", help="images: folder or zip; text: label<TAB>text file")
    p.add_argument("--tuner", default="hyperband", choices=["random", "bayesian",
                                                            "hyperband"])
    p.add_argument("--max-trials", type=int, default=20,
                   help="random/bayesian trials (hyperband: set by --max-epochs)")
    p.add_argument("--max-epochs", type=int, default=9)
    p.add_argument("--dir", required=True, help="search folder (resumes if present)")
    p.add_argument("--subset", type=int, help="use this many training images")
    p.add_argument("--val-per-class", type=int, default=500,
                   help="images: validation = the last N of each class")
    p.add_argument("--space", help='JSON narrowing the search space, e.g. '
                                   '\'{"attention": ["se", "cbam"], "depth": 3}\'')
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--vocab-size", type=int, default=20000)
    p.add_argument("--max-length", type=int, default=128)
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
    p.add_argument("--out", required=True, help="file (or folder for saved_model)")
    p.add_argument("--data", help="int8: image folder or zip (label<TAB>text "
                                  "file for a text model) to calibrate on")
    p.add_argument("--calibration", type=int, default=256,
                   help="int8: calibration images or texts")
    p.add_argument("--dynamic-batch", action="store_true",
                   help="a dynamic batch dimension instead of batch 1")
    p.set_defaults(run=cmd_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_tensorflow()
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
