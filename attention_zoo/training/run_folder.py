"""Run folders: what ``fit`` may write where, and when a run resumes.

A run folder holds only what training writes (``RUN_FILES``) and a
``run.json`` that says so and records the run's recipe and arguments. So:

- a new or empty folder becomes a run folder;
- a folder with anything else in it is never written to (it is not ours);
- a run folder with the same arguments resumes where it stopped; with
  other arguments it is refused, naming each difference;
- a finished run is refused, unless more epochs are asked for (it
  continues from its last checkpoint) or ``overwrite`` (it starts over,
  after removing only the files in ``RUN_FILES``).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from attention_zoo.files import write_text

RUN_FILE = "run.json"
#: Everything ``fit`` and ``attention-zoo train`` write into a run folder.
RUN_FILES = (RUN_FILE, "backup", "logs", "history.csv", "last.keras", "model.keras",
             "result.json", "summary.json", "vocab.txt")
#: Arguments that may change between a run and its resumption.
FREE_ARGUMENTS = ("epochs", "recipe.epochs")
#: Recipe fields that no longer exist, with the one value they ever had: a
#: run recorded with it resumes. (The model now names its Muon variables,
#: ``variable_groups()``, instead of a name pattern.)
RETIRED_ARGUMENTS = {"recipe.muon_pattern": "_conv/kernel$"}


def _plain(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(value, default=str))


def finished_epochs(out: Path) -> int:
    """Epochs the run in ``out`` completed, from its resume checkpoint."""
    meta = out / "backup" / "training_metadata.json"
    if not meta.is_file():
        return 0
    try:
        return int(json.loads(meta.read_text())["epoch"])
    except (ValueError, KeyError, TypeError, json.JSONDecodeError):
        return 0


def check(out: str | os.PathLike, arguments: dict[str, Any], epochs: int,
          overwrite: bool = False) -> str:
    """Whether ``out`` can hold the run described by ``arguments`` (which
    includes ``epochs``); writes nothing. Returns ``"new"``, ``"resume"``,
    ``"continue"`` (a finished run, more epochs) or ``"overwrite"``; raises
    ``ValueError`` naming the problem otherwise."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"the run folder {str(out)!r} is an existing file; pass a "
                         f"new or empty folder")
    parent = out if out.is_dir() else _existing_parent(out)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write to {str(parent)!r} (permission denied); "
                         f"pass a run folder you can write")
    if not out.is_dir() or not any(out.iterdir()):
        return "new"
    record = _record(out)
    if record is None:
        foreign = sorted(p.name for p in out.iterdir() if p.name not in RUN_FILES)
        raise ValueError(
            f"{str(out)!r} is not an attention_zoo run folder (no {RUN_FILE}"
            + (f"; it holds {', '.join(foreign[:3])}" if foreign else "")
            + "); pass a new or empty folder: nothing in it was changed")
    if overwrite:
        return "overwrite"
    before = record.get("arguments")  # None: a run older than run.json
    now = _plain(arguments)
    if before is not None:
        before = {k: v for k, v in before.items()
                  if k not in RETIRED_ARGUMENTS or RETIRED_ARGUMENTS[k] != v}
    differ = [] if before is None else [
        k for k in sorted(set(before) | set(now))
        if k not in FREE_ARGUMENTS and before.get(k) != now.get(k)]
    if differ:
        detail = "; ".join(f"{k}: {now.get(k)!r} (the run: {before.get(k)!r})"
                           for k in differ[:6])
        raise ValueError(f"{str(out)!r} holds a run with other arguments ({detail}); "
                         f"pass the same ones to resume it, a new folder, or "
                         f"--overwrite / overwrite=True to start over")
    done = finished_epochs(out)
    if (out / "model.keras").exists() and (out / "result.json").exists():
        if epochs > done > 0:
            return "continue"
        raise ValueError(
            f"{str(out)!r} holds a finished run of {record.get('epochs', done)} epochs; "
            f"pass a larger --epochs to continue it"
            + ("" if done else " (not this one: it kept no checkpoint)")
            + ", a new folder, or --overwrite to train again")
    return "resume"


def claim(out: str | os.PathLike, arguments: dict[str, Any], epochs: int,
          overwrite: bool = False) -> str:
    """``check``, then makes ``out`` this run's folder: removes what an
    earlier run wrote when overwriting, and writes ``run.json``."""
    out = Path(out)
    state = check(out, arguments, epochs, overwrite)
    if state == "overwrite":
        for name in RUN_FILES:
            path = out / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / RUN_FILE, json.dumps({"created_by": "attention_zoo",
                                           "epochs": epochs,
                                           "arguments": _plain(arguments)}, indent=2))
    return state


def _record(out: Path) -> dict[str, Any] | None:
    """The folder's ``run.json``; for a run written before run folders had
    one (``history.csv`` and ``last.keras``), an empty record."""
    path = out / RUN_FILE
    if path.is_file():
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return record if record.get("created_by") == "attention_zoo" else None
    if (out / "history.csv").is_file() and (out / "last.keras").is_file():
        return {}
    return None


def _existing_parent(path: Path) -> Path:
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"cannot make the run folder {str(path)!r}: "
                                 f"{str(parent)!r} is a file")
            return parent
    return Path("/")
