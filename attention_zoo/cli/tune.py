"""``attention-zoo tune``: a KerasTuner search of a zoo hypermodel."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from attention_zoo.cli.common import per_class


def cmd_tune(args: argparse.Namespace) -> int:
    from attention_zoo import data, tuning

    if args.distributed:
        missing = [v for v in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP",
                               "KERASTUNER_ORACLE_PORT") if v not in os.environ]
        if missing:
            raise ValueError(f"set {missing} "
                             f"(KerasTuner's chief/worker variables)")
    elif "KERASTUNER_TUNER_ID" in os.environ:
        raise ValueError("KerasTuner's distributed variables "
                         "are set; pass --distributed to use them")
    _check_directory(Path(args.dir))
    try:
        space = json.loads(args.space) if args.space else {}
    except json.JSONDecodeError as error:
        raise ValueError(f"--space is not valid JSON ({error.msg} at character "
                         f"{error.pos}): {args.space!r}") from None
    if not isinstance(space, dict):
        raise ValueError(f"--space is a JSON object such as "
                         f"'{{\"attention\": [\"se\", \"cbam\"]}}', received {args.space!r}")
    if args.model in ("attn_cnn", "attn_resnet"):
        train_set, val_set = data.cifar10(args.data, val_per_class=args.val_per_class)
        if args.subset:
            train_set = per_class(train_set, args.subset // len(train_set.class_names))
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
        raise ValueError(f"unknown model {args.model!r}; known: "
                         f"attn_cnn, attn_resnet, attn_text")
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


def _check_directory(directory: Path) -> None:
    """A search folder holds nothing but searches (KerasTuner's
    ``<model>_<tuner>`` folders) and ``best.keras``, which is written there."""
    from attention_zoo.tuning import HYPERMODELS, TUNERS

    if directory.exists() and not directory.is_dir():
        raise ValueError(f"--dir {str(directory)!r} is an existing file; pass a "
                         f"folder for the search")
    ours = {f"{m}_{t}" for m in HYPERMODELS for t in TUNERS} | {"best.keras"}
    others = sorted(p.name for p in directory.iterdir()
                    if p.name not in ours) if directory.is_dir() else []
    if others:
        raise ValueError(f"--dir {str(directory)!r} holds files that are not a "
                         f"search ({', '.join(others[:3])}); pass a new or empty "
                         f"folder, or one an earlier search used")
