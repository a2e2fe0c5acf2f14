"""Plots every full-length CIFAR-10 run of ``benchmarks/cifar10_epochs.md``:
validation accuracy (with TTA) against minutes of training, with the issue's
targets (91.5%, 45 minutes) drawn in.

Usage: python benchmarks/cifar10_runs_plot.py [--table benchmarks/cifar10_epochs.md]
       [--out benchmarks/cifar10_runs.png]

Reads the Markdown table, not the summaries: its "wall min" column says which
times are clean measurements (a number alone) and which are not (a number
with a note, or "-": shared cores or another CPU); those are drawn hollow at their
time, or at the right edge when there is none.
"""

from __future__ import annotations

import argparse
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TARGET_ACCURACY = 0.915
TARGET_MINUTES = 45.0


def read_runs(path: str) -> list[dict]:
    """Rows of the table as ``{"label", "minutes", "clean", "accuracy"}``."""
    runs = []
    for line in open(path, encoding="utf-8"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 7 or not cells[0].startswith("`benchmarks/results/"):
            continue
        label = re.search(r"attn_cnn_cifar10_?(\w*)/", cells[0]).group(1) or "w64"
        minutes = re.match(r"[\d.]+", cells[3])
        runs.append({"label": label,
                     "minutes": float(minutes.group()) if minutes else None,
                     "clean": bool(re.fullmatch(r"[\d.]+", cells[3])),
                     "accuracy": float(cells[5])})
    if not runs:
        raise ValueError(f"no result rows found in {path!r}")
    return runs


def plot(runs: list[dict], out: str) -> None:
    fig, ax = plt.subplots(figsize=(8, 5))
    right = max(max(r["minutes"] or 0 for r in runs), TARGET_MINUTES) + 6
    untimed_x = right - 1.5  # a column of its own at the right edge
    placed: list[tuple[float, float]] = []
    for run in runs:
        x = run["minutes"] if run["minutes"] is not None else untimed_x
        y = 100 * run["accuracy"]
        ax.scatter(x, y, s=40, color="C0", facecolors="C0" if run["clean"] else "none")
        # Of two points that nearly coincide, the second is labelled on the left.
        near = any(abs(x - px) < 1.0 and abs(y - py) < 0.04 for px, py in placed)
        ax.annotate(run["label"], (x, y), textcoords="offset points",
                    xytext=(-4, 3) if near else (4, 3), ha="right" if near else "left",
                    fontsize=7)
        placed.append((x, y))
    ax.axhline(100 * TARGET_ACCURACY, color="C3", linestyle="--", linewidth=1)
    ax.axvline(TARGET_MINUTES, color="C3", linestyle="--", linewidth=1)
    left = min(r["minutes"] for r in runs if r["minutes"] is not None)
    ax.text(left, 100 * TARGET_ACCURACY + 0.03, "target 91.5%", color="C3", fontsize=8)
    if any(r["minutes"] is None for r in runs):
        ax.axvline(right - 3, color="grey", linestyle=":", linewidth=1)
        ax.text(untimed_x, 100 * min(r["accuracy"] for r in runs), "untimed",
                color="grey", ha="center", fontsize=8)
    ax.set_xlim(right=right)
    ax.set_xlabel("training minutes, 2 CPU cores (hollow: shared cores, another CPU or untimed)")
    ax.set_ylabel("validation accuracy, % (flip_translate TTA)")
    ax.set_title("AttnCNN on CIFAR-10 (JPEG, 45k train / 5k val): full runs")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--table", default="benchmarks/cifar10_epochs.md")
    parser.add_argument("--out", default="benchmarks/cifar10_runs.png")
    args = parser.parse_args()
    plot(read_runs(args.table), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
