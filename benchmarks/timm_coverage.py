"""Which of timm's attention CNNs ``attention_zoo.interop.from_timm``
converts, and how closely: every model of timm's ``byoanet`` and
``byobnet`` modules and every attention model of its ``resnet`` module
(names starting with an attention prefix: se, eca, gc, ge, skresnet...),
built with random weights, converted, and compared with timm on the same
random pixels (logits, eval mode). Refusals are listed with the
converter's reason.

Usage:
  python benchmarks/timm_coverage.py [--out benchmarks/timm_coverage.md]
      [--models NAME ...]
Writes Markdown to --out (replaced atomically) and prints a line per model.
Needs torch, torchvision and timm (``pip install -e ".[timm]"``); nothing is
downloaded.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import _common  # benchmarks/_common.py: imported while this folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]
_common.import_from(ROOT, ROOT / "tests")  # timm, not benchmarks/timm.py; timm_parity
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: timm's resnet.py models with attention: these name prefixes.
RESNET_ATTENTION = ("se", "ecaresnet", "gcresnet", "gcresnext", "geresnet", "skresnet",
                    "skresnext", "resnetrs", "resnest")
SIZES = (64, 128, 256)  # the first an architecture runs at; then its own size
TOLERANCE = 1e-4


def model_names() -> list[tuple[str, str]]:
    """``(timm module, model name)`` of every model the coverage table lists."""
    import timm

    names = [("byoanet", n) for n in timm.list_models(module="byoanet")]
    names += [("byobnet", n) for n in timm.list_models(module="byobnet")]
    names += [("resnet", n) for n in timm.list_models(module="resnet")
              if n.startswith(RESNET_ATTENTION)]
    names += [("resnest", n) for n in timm.list_models(module="resnest")]
    names += [("sknet", n) for n in timm.list_models(module="sknet")]
    return names


def check(name: str) -> dict:
    """Converts ``name`` (random weights) and compares logits with timm's at
    the first of ``SIZES`` the timm model runs at."""
    import timm
    from timm_parity import converted, relative_error

    cfg = timm.models.get_pretrained_cfg(name)
    fixed = bool(cfg and cfg.fixed_input_size)
    native = cfg.input_size[-1] if cfg and cfg.input_size else None
    last_error = None
    for size in SIZES + ((native,) if native and native not in SIZES else ()):
        kwargs = {"img_size": size} if fixed else {}
        try:
            model = timm.create_model(name, pretrained=False, num_classes=10, **kwargs)
        except TypeError:  # no img_size argument
            model = timm.create_model(name, pretrained=False, num_classes=10)
        started = time.perf_counter()
        try:
            keras_model, got, want = converted(model, size=size)
        except ValueError as error:
            if "from_timm cannot convert" in str(error):
                return {"refused": str(error).split(". It converts")[0]
                        .replace("from_timm cannot convert this ", "")
                        .replace("from_timm cannot convert ", "")}
            last_error = error
            continue
        except (AssertionError, RuntimeError) as error:  # timm's size checks
            last_error = error
            continue
        return {"error": relative_error(got, want), "size": size,
                "seconds": time.perf_counter() - started,
                "class": type(keras_model).__name__,
                "params": keras_model.count_params()}
    return {"failed": f"{type(last_error).__name__}: {str(last_error).strip()[:200]}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "timm_coverage.md"))
    parser.add_argument("--models", nargs="*", help="timm model names (default: all listed)")
    args = parser.parse_args()
    import timm

    started = time.perf_counter()
    names = [("given", n) for n in args.models] if args.models else model_names()
    rows = []
    for index, (module, name) in enumerate(names, 1):
        result = check(name)
        rows.append((module, name, result))
        if "error" in result:
            line = (f"converts, relative error {result['error']:.1e} at "
                    f"{result['size']}x{result['size']}")
        else:
            line = result.get("refused") or result.get("failed")
        print(f"[{index}/{len(names)}] {name}: {line}", flush=True)
    converted = [r for r in rows if "error" in r[2]]
    passed = [r for r in converted if r[2]["error"] <= TOLERANCE]
    lines = [
        "# Which timm attention CNNs from_timm converts",
        "",
        _common.made_on(time.perf_counter() - started),
        "",
        f"$ {_common.command()}",
        "",
        f"CPU: {_common.cpu_lines()}.",
        "",
        f"Versions: timm {_common.version('timm')}, torch {_common.version('torch')}, "
        f"Keras {_common.version('keras')}, TensorFlow {_common.version('tensorflow')}.",
        "",
        "Every model of timm's `byoanet` and `byobnet` modules, the attention "
        f"models of `resnet` (names starting {', '.join(RESNET_ATTENTION)}), "
        "`resnest` and `sknet`: built with random weights "
        "(`tests/timm_parity.py`'s `randomized`), converted with "
        "`attention_zoo.interop.from_timm`, and run on the same two random "
        "images at the first of "
        f"{', '.join(f'{s}x{s}' for s in SIZES)} and its pretrained "
        "input size that timm's model runs at (fixed-size models built for "
        "that size). Relative error: max |Keras "
        "- timm| / max |timm| over the logits.",
        "",
        f"**{len(passed)} of {len(rows)} models convert within {TOLERANCE:g}**; "
        f"{len(converted) - len(passed)} convert with a larger error; "
        f"{sum('refused' in r for _, _, r in rows)} are refused by the converter and "
        f"{sum('failed' in r for _, _, r in rows)} fail otherwise, each with its reason "
        "below.",
        "",
        "| timm module | model | result | relative error | Keras class |",
        "|---|---|---|---|---|",
    ]
    for module, name, r in rows:
        if "error" in r:
            lines.append(f"| {module} | `{name}` | converts at {r['size']}x{r['size']} | "
                         f"{r['error']:.1e} | {r['class']} |")
        else:
            kind = "refused" if "refused" in r else "failed"
            reason = r[kind].replace("|", "\\|")
            lines.append(f"| {module} | `{name}` | {kind}: {reason} | | |")
    _common.write_text(Path(args.out), "\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
