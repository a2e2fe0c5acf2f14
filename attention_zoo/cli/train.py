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

    from attention_zoo import training
    from attention_zoo.models.attn_cnn import DEFAULT_RECIPE

    args.started = time.perf_counter()
    trainers = {"attn_cnn": (_train_images, DEFAULT_RECIPE),
                "attn_text": (_train_text, "text"), "nb_text": (_train_text, "nb_text")}
    if args.model not in trainers:
        raise ValueError(f"unknown model {args.model!r}; "
                         f"known: {', '.join(trainers)}")
    trainer, default_recipe = trainers[args.model]
    args.run_recipe = _recipe(args, default_recipe)
    # What defines the run besides its recipe: a resumed run must match it.
    args.arguments = {k: v for k, v in vars(args).items() if k not in NOT_RUN_ARGUMENTS}
    for key in ("data", "val_data", "extra_data"):  # the same files, however named
        value = args.arguments.get(key)
        if value:
            args.arguments[key] = ([_absolute(v) for v in value] if isinstance(value, list)
                                   else _absolute(value))
    # Checked before minutes of data loading; fit() checks again and claims it.
    training.run_folder.check(args.out, training.run_arguments(args.run_recipe,
                                                               args.arguments),
                              args.run_recipe.epochs, args.overwrite)
    if args.ship:  # refused now rather than after training
        from attention_zoo.models.cards import check_ship_name

        check_ship_name(args.ship, overwrite=args.overwrite)
    if args.strategy:
        # MultiWorkerMirroredStrategy must exist before any TensorFlow work.
        args.strategy = training.get_strategy(args.strategy)
    keras.utils.set_random_seed(args.seed)
    return trainer(args)


#: Command-line arguments that do not change what a run trains.
NOT_RUN_ARGUMENTS = ("run", "command", "debug", "out", "overwrite", "ship", "started",
                     "run_recipe", "arguments", "epochs", "batch_size", "lr", "set",
                     "recipe")


def _absolute(path: str) -> str:
    return str(Path(path).resolve())


def _recipe(args: argparse.Namespace, default: str):
    from attention_zoo import training

    changes = {k: v for k, v in {"epochs": args.epochs, "batch_size": args.batch_size,
                                 "learning_rate": args.lr}.items() if v is not None}
    recipe = training.get_recipe(args.recipe or default, **changes)
    return recipe.replace(**dict(_recipe_field(recipe, item) for item in args.set))


TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "none")


def _recipe_field(recipe, item: str) -> tuple:
    """``FIELD=VALUE`` of ``--set``, converted to the field's declared type
    (``Recipe`` checks the value itself)."""
    import dataclasses

    field, equals, value = item.partition("=")
    types = {f.name: f.type for f in dataclasses.fields(recipe)}
    if field not in types or not equals or not value:
        raise ValueError(f"--set expects FIELD=VALUE with a recipe field "
                         f"({', '.join(types)}), received {item!r}")
    kind, low = types[field], value.lower()
    if "bool" in kind and low in TRUE + FALSE:
        return field, low in TRUE
    if kind == "bool | str":  # a mode's name (flip="alternate", tta="flip")
        return field, value
    converters = {"int": int, "float": float, "str": str}
    try:
        return field, converters[kind](value)
    except (KeyError, ValueError):
        want = "true or false" if kind == "bool" else f"{'an' if kind == 'int' else 'a'} {kind}"
        raise ValueError(f"--set {field} takes {want}, received {value!r}") from None


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
        folder = ship(result.model, args.ship, summary, files=files,
                      overwrite=args.overwrite)
        print(f"shipped to {folder}")
    return 0


def _train_images(args: argparse.Namespace) -> int:
    from attention_zoo import data, training
    from attention_zoo.models import AttnCNN
    from attention_zoo.models.attn_cnn import selection_proxy

    train_set, val_set = data.cifar10(args.data, val_per_class=args.val_per_class,
                                      option="--val-per-class")
    if args.train_per_class:
        train_set = per_class(train_set, args.train_per_class)
    print(f"data: {len(train_set)} training and {len(val_set)} validation images, "
          f"{len(train_set.class_names)} classes")
    recipe = args.run_recipe
    train_ds = data.pipeline(train_set, recipe.batch_size, training=True,
                             translate=recipe.translate, flip=recipe.flip,
                             cutout=recipe.cutout, seed=args.seed)
    val_ds = data.pipeline(val_set, 1000)
    config = {"input_shape": [32, 32, 3], "num_classes": len(train_set.class_names),
              "attention": args.attention, **_attn_cnn_arguments(args)}
    result = training.fit(lambda: AttnCNN(**config), train_ds, val_ds, recipe=recipe,
                          out_dir=args.out, precision=args.precision,
                          jit_compile=args.jit_compile, train_size=len(train_set),
                          strategy=args.strategy, overwrite=args.overwrite,
                          arguments=args.arguments,
                          proxy=lambda: selection_proxy(**config))
    plain = None if result.val_accuracy_plain is None else round(result.val_accuracy_plain, 4)
    return _finish(args, result, recipe, "attn_cnn", config,
                   f"{args.data or 'keras.datasets.cifar10'}: {len(train_set)} "
                   f"training images; validation = last "
                   f"{len(val_set) // len(val_set.class_names)} "
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
    where = repr(args.data) if args.data else "the IMDB reviews"
    if args.class_names:  # declared classes may lack examples
        classes = len(args.class_names)
        for labels in (train_set.labels, val_set.labels):
            data.check_labels(labels, classes, where, args.class_names)
    else:
        classes = data.infer_num_classes(train_set.labels, where=where)
        data.check_labels(val_set.labels, classes, where)
    print(f"data: {len(train_set)} training and {len(val_set)} validation texts, "
          f"{classes} classes")
    max_length = args.max_length or MAX_LENGTH[args.model]
    if args.model == "nb_text":
        ngrams = args.ngrams or 3
        recipe = args.run_recipe
        config = {"num_classes": classes, "ngrams": ngrams, "max_length": max_length,
                  "split_contractions": args.split_contractions}
        builder = NBTextClassifier
    else:
        ngrams = args.ngrams
        recipe = args.run_recipe
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
                          train_size=len(train_set), strategy=args.strategy,
                          overwrite=args.overwrite, arguments=args.arguments)
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
