"""``attention-zoo train``: AttnCNN on images, AttnTextClassifier and
NBTextClassifier on texts;
writes the run's model card and ships it on request."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from attention_zoo.cli.common import per_class, text_splits
from attention_zoo.files import write_text


def cmd_train(args: argparse.Namespace) -> int:
    import keras

    args.started = time.perf_counter()
    trainers = {"attn_cnn": _train_images, "attn_text": _train_text,
                "nb_text": _train_text}
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


#: Recipe fields that take False, True or a mode's name.
MODE_FIELDS = ("tta", "flip")


def _recipe_field(recipe, item: str) -> tuple:
    """``FIELD=VALUE`` of ``--set``, converted to the field's type."""
    field, _, value = item.partition("=")
    if not hasattr(recipe, field) or not value:
        raise SystemExit(f"--set expects FIELD=VALUE with a recipe field "
                         f"({', '.join(recipe.__dataclass_fields__)}), received {item!r}")
    current = getattr(recipe, field)
    if isinstance(current, bool) or field in MODE_FIELDS:
        low = value.lower()
        if low in ("0", "false", "no", "off", "none"):
            return field, False
        if low in ("1", "true", "yes", "on"):
            return field, True
        if field in MODE_FIELDS:  # a mode's name; the recipe checks it
            return field, value
        raise SystemExit(f"--set {field} expects true or false, received {value!r}")
    return field, type(current)(value)


def _finish(args: argparse.Namespace, result, recipe, model_name: str,
            config: dict, data_text: str, train_size: int, extra: dict,
            files: dict | None = None, validation: str | None = None) -> int:
    """Writes summary.json (the model card) and ships the model if asked.
    ``validation`` names the held-out split alone (``data_text`` also
    describes the training texts), so ``ensemble`` can check its members
    share it."""
    import dataclasses

    from attention_zoo import __version__, training
    from attention_zoo.models.cards import machine, ship

    if not training.is_chief(args.strategy):
        return 0  # workers of a multi-worker run leave the files to the chief
    history = _history_csv(Path(args.out) / "history.csv")
    seconds = history.get("epoch_seconds", [])
    summary = {
        "model": model_name, "config": config, "data": data_text,
        "validation": validation or data_text,
        "recipe": dataclasses.asdict(recipe),
        "command": "attention-zoo " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "epochs": recipe.epochs,
        "wall_seconds": round(sum(seconds), 1),
        # The whole command: data, vocabulary, adapting, training, evaluation.
        "command_seconds": round(time.perf_counter() - args.started, 1),
        "train_examples_per_second": round(train_size * len(seconds)
                                           / max(sum(seconds), 1e-9), 1),
        "precision": result.precision, "jit_compile": result.jit_compile,
        "onednn": training.onednn_enabled(), "machine": machine(),
        "val_accuracy": None if result.val_accuracy is None
        else round(result.val_accuracy, 4),
        **extra,
        "params": result.model.count_params(),
        "package_version": __version__,
        "date": time.strftime("%Y-%m-%d"),
    }
    write_text(Path(args.out) / "summary.json", json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    if args.ship:
        folder = ship(result.model, args.ship, summary, files=files)
        print(f"shipped to {folder}")
    return 0


def _train_images(args: argparse.Namespace) -> int:
    from attention_zoo import data, training
    from attention_zoo.models import AttnCNN
    from attention_zoo.models.attn_cnn import DEFAULT_RECIPE, selection_proxy

    train_set, val_set = data.cifar10(args.data, val_per_class=args.val_per_class)
    if args.train_per_class:
        train_set = per_class(train_set, args.train_per_class)
    print(f"data: {len(train_set)} training and {len(val_set)} validation images, "
          f"{len(train_set.class_names)} classes")
    recipe = _recipe(args, DEFAULT_RECIPE)
    train_ds = data.pipeline(train_set, recipe.batch_size, training=True,
                             translate=recipe.translate, flip=recipe.flip,
                             cutout=recipe.cutout, seed=args.seed)
    val_ds = data.pipeline(val_set, 1000)
    config = {"input_shape": [32, 32, 3], "num_classes": len(train_set.class_names),
              "attention": args.attention, **_attn_cnn_arguments(args)}
    result = training.fit(lambda: AttnCNN(**config), train_ds, val_ds, recipe=recipe,
                          out_dir=args.out, precision=args.precision,
                          jit_compile=args.jit_compile, train_size=len(train_set),
                          strategy=args.strategy,
                          proxy=lambda: selection_proxy(**config))
    plain = None if result.val_accuracy_plain is None else round(result.val_accuracy_plain, 4)
    return _finish(args, result, recipe, "attn_cnn", config,
                   f"{args.data or 'keras.datasets.cifar10'}: {len(train_set)} "
                   f"training images; validation = last {args.val_per_class} "
                   f"images of each class ({len(val_set)})", len(train_set),
                   {"val_accuracy_without_tta": plain,
                    "val_accuracy_reported": f"with {training.tta_name(recipe.tta)} TTA"
                    if recipe.tta
                    else "without TTA"})


def _attn_cnn_arguments(args: argparse.Namespace) -> dict:
    """AttnCNN's architecture arguments for the card: those given on the
    command line, the model's signature defaults for the rest."""
    import inspect

    from attention_zoo.models import AttnCNN

    defaults = inspect.signature(AttnCNN).parameters
    config = {}
    for name in ("width", "stem_width", "stem", "dirac", "bn_scale", "bn_momentum",
                 "residual_attention", "activation"):
        given = getattr(args, name)
        value = defaults[name].default if given is None else given
        config[name] = list(value) if name == "width" else value
    return config


#: --max-length when not given: tokens of a word model, n-gram ids of a bag.
MAX_LENGTH = {"attn_text": 128, "nb_text": 8000}


def _train_text(args: argparse.Namespace) -> int:
    import numpy as np

    from attention_zoo import data, training
    from attention_zoo.data.text import build_vocabulary, write_vocabulary
    from attention_zoo.models import AttnTextClassifier, NBTextClassifier

    train_set, val_set, source = text_splits(args)
    split = source
    if args.extra_data:
        extra = data.text.concatenate([data.text_tsv(path) for path in args.extra_data])
        # A validation text among the extra ones would leak into training.
        held_out = set(val_set.texts)
        keep = np.array([t not in held_out for t in extra.texts], bool)
        train_set = data.text.concatenate([train_set, extra.take(np.flatnonzero(keep))])
        source += f"; more training texts: {', '.join(args.extra_data)}"
        dropped = int((~keep).sum())
        if dropped:
            source += f" ({dropped} validation texts among them left out)"
            print(f"--extra-data: left out {dropped} texts that are in the "
                  f"validation split")
    classes = int(max(train_set.labels.max(), val_set.labels.max())) + 1
    print(f"data: {len(train_set)} training and {len(val_set)} validation texts, "
          f"{classes} classes")
    max_length = args.max_length or MAX_LENGTH[args.model]
    if args.model == "nb_text":
        ngrams = args.ngrams or 3
        recipe = _recipe(args, "nb_text")
        config = {"num_classes": classes, "ngrams": ngrams, "max_length": max_length,
                  "split_contractions": args.split_contractions}
        builder = NBTextClassifier
    else:
        ngrams = args.ngrams
        recipe = _recipe(args, "text")
        config = {"num_classes": classes, "max_length": max_length,
                  "ngrams": ngrams, "truncating": args.truncating,
                  "encoder": args.encoder,
                  "attention": args.text_attention, "embed_dim": args.embed_dim,
                  "hidden": args.hidden, "dropout": args.dropout,
                  "split_contractions": args.split_contractions}
        builder = AttnTextClassifier
    vocabulary = build_vocabulary(train_set.texts, args.vocab_size, ngrams,
                                  args.split_contractions)
    train_ds = data.text_pipeline(train_set, recipe.batch_size, training=True,
                                  num_classes=classes, seed=args.seed)
    val_ds = data.text_pipeline(val_set, 256, num_classes=classes)
    result = training.fit(lambda: builder(vocabulary=vocabulary, **config),
                          train_ds, val_ds, recipe=recipe, out_dir=args.out,
                          precision=args.precision, jit_compile=args.jit_compile,
                          train_size=len(train_set), strategy=args.strategy)
    write_vocabulary(vocabulary, Path(args.out) / "vocab.txt")
    return _finish(args, result, recipe, args.model,
                   {**config, "vocabulary": "vocab.txt"},
                   f"{source}: {len(train_set)} training texts, {len(val_set)} "
                   f"validation texts", len(train_set),
                   {"vocabulary_size": len(vocabulary) + 2,
                    "class_names": args.class_names or [str(i) for i in range(classes)]},
                   files={"vocab.txt": Path(args.out) / "vocab.txt"},
                   validation=f"{split}: {len(val_set)} texts")


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
            except (TypeError, ValueError):  # "NA": an epoch without validation
                if key != "epoch" and value == "NA":
                    columns.setdefault(key, []).append(float("nan"))
    return columns
