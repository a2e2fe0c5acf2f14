"""Finished training runs into shipped models: ``attention-zoo ensemble``
averages runs into one model, evaluates it and its members on the runs'
validation split and ships it; ``attention-zoo ship`` ships one run as it
is."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from attention_zoo.files import write_text


def cmd_ensemble(args: argparse.Namespace) -> int:
    from attention_zoo import __version__, training
    from attention_zoo.cli.common import load_model
    from attention_zoo.models import ensemble
    from attention_zoo.models.cards import check_ship_name, machine, ship
    from attention_zoo.models.presets import FILE_ARGUMENTS

    if args.ship:  # before the members are loaded and evaluated
        check_ship_name(args.ship, overwrite=args.overwrite)
    _check_summary_target(Path(args.out) / "summary.json", args.overwrite)
    runs = [Path(r) for r in args.runs]
    summaries = [_summary(run) for run in runs]
    # Older runs have no "validation": their "data" describes both splits.
    splits = {s.get("validation") or s.get("data") for s in summaries}
    if len(splits) > 1:
        raise ValueError(f"the runs were validated on "
                         f"different data ({' | '.join(map(str, splits))}); "
                         f"members must share the held-out split")
    members = [load_model(str(run / "model.keras")) for run in runs]
    model = ensemble(members, name=args.ship or "ensemble")
    val_ds, count = _validation(args, model)
    # Image runs are judged with their recipe's test-time augmentation.
    tta = summaries[0].get("recipe", {}).get("tta", False) if "val_images" in count \
        else False
    # Each member runs over the split once; the ensemble's output is their mean.
    probabilities = [training.predict(member, val_ds, tta) for member in members]
    accuracy = training.accuracy(np.mean(probabilities, axis=0), val_ds)
    member_cards, files, config = [], {}, []
    for i, (run, summary, p) in enumerate(zip(runs, summaries, probabilities)):
        member_config = dict(summary["config"])
        for key in FILE_ARGUMENTS:
            if isinstance(member_config.get(key), str):
                files[f"member{i}.{member_config[key]}"] = run / member_config[key]
                member_config[key] = f"member{i}.{member_config[key]}"
        config.append({"model": summary["model"], "config": member_config})
        member_cards.append({
            "run": str(run), "command": summary.get("command"),
            "recipe": summary.get("recipe"), "epochs": summary.get("epochs"),
            "wall_seconds": summary.get("wall_seconds"),
            "command_seconds": summary.get("command_seconds"),
            "val_accuracy": round(training.accuracy(p, val_ds), 4)})
        print(f"member{i} {run}: val_accuracy {member_cards[-1]['val_accuracy']}")
    summary = {
        "model": "ensemble", "config": {"members": config},
        "data": " | ".join(dict.fromkeys(str(s.get("data")) for s in summaries)),
        "validation": splits.pop(),
        "command": "attention-zoo " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "members": member_cards,
        # Training time of the whole model: the members ran one after another.
        "wall_seconds": round(sum(m["wall_seconds"] or 0 for m in member_cards), 1),
        "command_seconds": (None if None in [m["command_seconds"] for m in member_cards]
                            else round(sum(m["command_seconds"] for m in member_cards), 1)),
        "precision": sorted({s.get("precision") for s in summaries}),
        "machine": machine(),
        "val_accuracy": round(accuracy, 4), **count,
        "tta": training.tta_name(tta),
        "class_names": summaries[0].get("class_names"),
        "params": model.count_params(),
        "package_version": __version__,
        "date": time.strftime("%Y-%m-%d"),
    }
    write_text(Path(args.out) / "summary.json", json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    if args.ship:
        folder = ship(model, args.ship, summary, files=files, overwrite=args.overwrite)
        print(f"shipped to {folder}")
    return 0


def cmd_ship(args: argparse.Namespace) -> int:
    """Ships a finished run's model.keras with its summary.json as the card,
    exactly what ``attention-zoo train --ship`` would have written."""
    from attention_zoo.cli.common import load_model
    from attention_zoo.models.cards import check_ship_name, ship
    from attention_zoo.models.presets import FILE_ARGUMENTS

    check_ship_name(args.name, overwrite=args.overwrite)
    run = Path(args.folder)
    summary = _summary(run, "ship")
    if summary.get("model") == "ensemble":
        raise ValueError("this is an ensemble run; ship it "
                         "with `attention-zoo ensemble ... --ship NAME`")
    files = {value: run / value for key, value in summary["config"].items()
             if key in FILE_ARGUMENTS and isinstance(value, str)}
    model = load_model(str(run / "model.keras"))
    folder = ship(model, args.name, summary, files=files, overwrite=args.overwrite)
    print(f"shipped to {folder}")
    return 0


def _check_summary_target(path: Path, overwrite: bool) -> None:
    """An ensemble's summary.json replaces only an ensemble's, when asked:
    ``--out`` may be a training run's folder, whose summary is its card."""
    if not path.exists():
        return
    try:
        previous = json.loads(path.read_text()).get("model")
    except (OSError, ValueError, AttributeError):
        previous = None
    if previous != "ensemble":
        raise ValueError(f"{str(path)!r} exists and is not an ensemble's summary; "
                         f"pass another --out")
    if not overwrite:
        raise ValueError(f"{str(path)!r} holds an ensemble's summary; pass "
                         f"--overwrite to replace it or another --out")


def _summary(run: Path, command: str = "ensemble") -> dict[str, Any]:
    for name in ("summary.json", "model.keras"):
        if not (run / name).is_file():
            raise ValueError(f"{str(run)!r} has no {name}: "
                             f"pass folders of finished `attention-zoo train` runs")
    return json.loads((run / "summary.json").read_text())


def _validation(args: argparse.Namespace, model: Any) -> tuple[Any, dict[str, int]]:
    """The members' validation split, as `attention-zoo train` made it."""
    from attention_zoo import data
    from attention_zoo.cli.common import takes_text, text_splits

    if takes_text(model):
        _, val_set, _ = text_splits(args)
        return (data.text_pipeline(val_set, 256, one_hot=False),
                {"val_texts": len(val_set)})
    _, val_set = data.cifar10(args.data, val_per_class=args.val_per_class)
    return data.pipeline(val_set, 1000), {"val_images": len(val_set)}
