"""The shipped models, re-checked: validation accuracy, inference throughput,
and each training run's time to accuracy (from the run's history.csv, copied
to benchmarks/results/<name>/ by this script).

Usage:
  python benchmarks/shipped_models.py --cifar ZIP --sst2 DIR --imdb TSV_GZ \
      [--runs runs] [--curve NAME=HISTORY_CSV]
Prints Markdown (committed as benchmarks/shipped_models.md).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import shutil
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from attention_zoo import data, models, training  # noqa: E402

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]


def throughput(predict, x, batch: int) -> float:
    predict(x[:batch])
    start = time.perf_counter()
    predict(x)
    return len(x) / (time.perf_counter() - start)


def _run_folder(name: str, runs: Path) -> Path:
    """The card's ``--out`` (relative to the repository), else runs/NAME."""
    words = shlex.split(models.card(name).get("command", ""))
    if "--out" in words[:-1]:
        return ROOT / words[words.index("--out") + 1]
    return runs / name


def _history(path: Path) -> dict[int, dict]:
    with path.open() as f:
        return {int(r["epoch"]): r for r in csv.DictReader(f)}  # a resume's last row


def time_to_accuracy(name: str, runs: Path, curve: Path | None = None) -> list[str]:
    """Validation accuracy after each epoch against cumulative training
    seconds. A run validated only at the end (``validate_every=0``) can take
    its per-epoch accuracies from ``curve``: the history.csv of the same
    training validated every epoch, accepted only if its training loss and
    accuracy match this run's exactly."""
    run = _run_folder(name, runs)
    target = RESULTS / name
    if (run / "history.csv").is_file():
        target.mkdir(parents=True, exist_ok=True)
        for file in ("history.csv", "summary.json"):
            shutil.copy(run / file, target / file)
    if not (target / "history.csv").is_file():
        return []
    rows = _history(target / "history.csv")
    validated, source = rows, "this run"
    if curve is not None:
        validated = _history(curve)
        differs = [epoch for epoch, row in rows.items()
                   if epoch not in validated
                   or (validated[epoch]["loss"], validated[epoch]["accuracy"])
                   != (row["loss"], row["accuracy"])]
        if differs:
            raise SystemExit(f"--curve {curve}: epochs {differs} trained differently "
                             f"from {name}'s run, so its validation is not this run's")
        source = (f"`{curve.relative_to(ROOT) if curve.is_absolute() else curve}`, the "
                  f"same training validated every epoch (training loss and accuracy "
                  f"identical in every epoch)")
    if all(validated[epoch].get("val_accuracy", "NA") == "NA" for epoch in rows):
        heading = ("cumulative training seconds after each epoch (validated only "
                   "after training, so no accuracy per epoch; pass --curve with a "
                   "validated run of the same training to fill it)")
    else:
        heading = (f"validation accuracy after each epoch (raw weights, no EMA or "
                   f"TTA; from {source}) against this run's cumulative training seconds")
    lines = [f"\n{name}: {heading}\n",
             "| epoch | cumulative s | val accuracy |", "|---|---|---|"]
    total = 0.0
    for epoch, row in sorted(rows.items()):
        total += float(row["epoch_seconds"])
        # "NA": a recipe with validate_every != 1 skipped this epoch's validation.
        value = validated[epoch].get("val_accuracy", "NA")
        lines.append(f"| {epoch + 1} | {total:.0f} | "
                     f"{'-' if value == 'NA' else f'{float(value):.4f}'} |")
    return lines


def member_lines(name: str, card: dict) -> list[str]:
    """An ensemble's members from its card: each has its own training run."""
    shutil.rmtree(RESULTS / name, ignore_errors=True)  # a single model's, before
    lines = [f"\n{name}: an ensemble; its members (from the card; training wall s "
             f"= epochs only, command s = the whole `attention-zoo train`)\n",
             "| member | model | training wall s | command s | val accuracy |",
             "|---|---|---|---|---|"]
    for i, (member, config) in enumerate(zip(card["members"],
                                             card["config"]["members"])):
        lines.append(f"| member{i} | {config['model']} | {member['wall_seconds']} | "
                     f"{member.get('command_seconds', '-')} | {member['val_accuracy']} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cifar")
    parser.add_argument("--sst2")
    parser.add_argument("--imdb")
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--curve", action="append", default=[], metavar="NAME=CSV",
                        help="per-epoch validation of shipped model NAME from another "
                             "run's history.csv with identical training")
    args = parser.parse_args()
    curves = {}
    for item in args.curve:
        name, _, path = item.partition("=")
        if not path or not Path(path).is_file():
            parser.error(f"--curve expects NAME=HISTORY_CSV of an existing file, "
                         f"received {item!r}")
        curves[name] = Path(path)
    shipped = models.pretrained()
    table = ["| model | validation split | val accuracy | inference examples/s "
             "(batch 256) | training wall s | training examples/s | card val accuracy |",
             "|---|---|---|---|---|---|---|"]
    extra: list[str] = []
    for name in shipped:
        card = models.card(name)
        model = models.load(name)
        if card["model"] == "attn_cnn" and args.cifar:
            _, val = data.cifar10(args.cifar)
            ds = data.pipeline(val, 256)
            tta = training.get_recipe("cifar10").tta
            plain, acc = training.view_accuracies(model, ds, tta)
            speed = throughput(lambda x: model.predict(x, batch_size=256, verbose=0),
                               val.images.astype("float32"), 256)
            split = "CIFAR-10 last 500/class (5,000)"
            shown = f"{acc:.4f} ({training.tta_name(tta)} TTA; {plain:.4f} without)"
        elif model.inputs[0].dtype == "string" and (args.sst2 or args.imdb):
            if "sst2" in name and args.sst2:
                val = data.text_tsv(Path(args.sst2) / "dev.tsv")
                split = "SST-2 dev (872)"
            elif "imdb" in name and args.imdb:
                _, val = data.imdb(args.imdb)
                split = "IMDB seeded stratified 10% of train (2,500)"
            else:
                continue
            p = model.predict(list(val.texts), batch_size=256, verbose=0)
            acc = float(np.mean(p.argmax(-1) == val.labels))
            speed = throughput(lambda x: model.predict(list(x), batch_size=256, verbose=0),
                               val.texts, 256)
            shown = f"{acc:.4f}"
        else:
            continue
        # Cards written before the text models say "images" for examples.
        trained = card.get("train_examples_per_second",
                           card.get("train_images_per_second"))
        # A selection run's proxy ranks every image; the net trains on a share.
        select = card.get("recipe", {}).get("select", 1.0)
        trained_cell = ("-" if trained is None else f"{trained:.0f}" if select == 1.0
                        else f"{trained:.0f} ranked, {trained * select:.0f} trained on")
        table.append(f"| {name} | {split} | {shown} | {speed:.0f} | "
                     f"{card['wall_seconds']:.0f} | {trained_cell} | "
                     f"{card['val_accuracy']} |")
        extra += (member_lines(name, card) if card["model"] == "ensemble"
                  else time_to_accuracy(name, Path(args.runs), curves.get(name)))
    print("\n".join(table + extra))
    print(f"\n(machine: {json.dumps(models.card(shipped[0])['machine']) if shipped else '-'})")


if __name__ == "__main__":
    main()
