"""AttnCNN and the token-id text classifier on Keras's three backends
(TensorFlow, JAX, PyTorch) on this machine's CPU: training and inference
throughput for float32 and mixed_bfloat16, without and with each backend's
compiler (XLA, jax.jit, torch.compile).

Usage:
  python benchmarks/backends.py [--models attn_cnn attn_text]
      [--backends tensorflow jax torch] [--precisions float32 mixed_bfloat16]
      [--jit off on] [--timed-seconds 8] [--compile-cap 120] [--budget 720]
      [--out PATH] [--quick]
Writes Markdown to --out (default benchmarks/backends.md, replaced atomically)
and prints a progress line per measurement. `--quick` (at most 2 timed steps
of everything) only tests the script: write its output elsewhere
(`--out /tmp/backends_quick.md`).

Keras picks its backend once per process, so each backend runs in worker
processes of its own (KERAS_BACKEND set); this process orchestrates them and
writes the file. Synthetic inputs: random pixels 0..255 for AttnCNN, random
token ids with random lengths 20..128 padded with 0 for the text model. Each
measurement, on in-memory NumPy arrays, is a warm-up call (tracing,
compiling; not timed) and then a timed call: `model.fit` (one epoch, SGD,
categorical cross-entropy) or `model.predict`, stopped after the first step
that ends --timed-seconds after its start. A warm-up that outlasts
--compile-cap is killed and reported as "compile > N s"; any other failure
becomes a cell with the error's last line, and the run goes on in a fresh
worker. --budget bounds the whole run: each backend gets an equal share of
what is left when it starts, and the measurements past it are "not run"
(without jit and float32 first, so the compiled rows go first).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import _common  # benchmarks/_common.py, beside this file

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("tensorflow", "jax", "torch")
PRECISIONS = ("float32", "mixed_bfloat16")
MODES = ("predict", "train")  # predict first: its compile is the cheaper one
COMPILERS = {"tensorflow": "XLA", "jax": "jax.jit", "torch": "torch.compile"}
TITLES = {"attn_cnn": "AttnCNN as shipped (`models.AttnCNN()`)",
          "attn_text": ('the text classifier on token ids (`models.create("attn_text", '
                        'string_input=False, vocab_size=20000, max_length=128)`)')}
BATCH = {"attn_cnn": 256, "attn_text": 64}
#: At most this many timed steps (train) or batches (predict) per model in
#: the default run, and fewer when --timed-seconds have passed (at least 1),
#: after a warm-up of 1 step or batch; torch.compile's training warm-up has
#: 2 steps (it compiles the training step again on its second call, once
#: gradients exist). JAX without jit runs op by op: at most EAGER_JAX steps.
TIMED = {("attn_cnn", "train"): 4, ("attn_cnn", "predict"): 4,
         ("attn_text", "train"): 10, ("attn_text", "predict"): 10}
EAGER_JAX = 2
QUICK = 2
MARK = "@@backends "  # the worker's lines to its parent; anything else is noise
NOISE = ("I0000", "W0000", "E0000", "WARNING: All log messages", "To enable",
         "rebuild TensorFlow", "WARNING:absl")


def steps_for(model: str, mode: str, backend: str, jit: bool,
              quick: bool) -> tuple[int, int]:
    """(warm-up steps, timed steps) of one measurement."""
    warmup = 2 if backend == "torch" and jit and mode == "train" else 1
    if quick:
        return warmup, QUICK
    return warmup, EAGER_JAX if backend == "jax" and not jit else TIMED[(model, mode)]


# ---------------------------------------------------------------- the worker


def _emit(**event) -> None:
    print(MARK + json.dumps(event), flush=True)


def _last_line(error: BaseException) -> str:
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[-1].strip()}" if lines else type(error).__name__


def _build(name: str):
    from attention_zoo import models

    if name == "attn_cnn":
        return models.AttnCNN()
    return models.create("attn_text", string_input=False, vocab_size=20000, max_length=128)


def _data(name: str, count: int, classes: int):
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    if name == "attn_cnn":
        x = rng.integers(0, 256, (count, 32, 32, 3)).astype("float32")
    else:
        lengths = rng.integers(20, 129, count)
        x = rng.integers(1, 20000, (count, 128)).astype("int32")
        x[np.arange(128)[None, :] >= lengths[:, None]] = 0
    y = keras.utils.to_categorical(np.arange(count) % classes, classes)
    return x, y


def worker(backend: str, phases: list[dict]) -> None:
    """Runs ``phases`` (dicts: model, precision, jit, mode, warmup, steps,
    seconds) in order, building each (model, precision, jit) once; emits an
    event at the start of each stage so the parent can time it out."""
    import attention_zoo  # noqa: F401  before TensorFlow: oneDNN as users get it
    import keras
    import numpy as np

    class Clock(keras.callbacks.Callback):
        """Times the batches of one fit or predict call, from its start to the
        end of its last batch, and stops it after the first batch that ends
        ``seconds`` or more after the start. Overriding the batch-end hooks
        keeps Keras from dispatching them asynchronously: each one runs after
        its step has finished (the outputs are fetched to be sure)."""

        def __init__(self, seconds: float) -> None:
            super().__init__()
            self.seconds, self.batches, self.start, self.end = seconds, 0, None, None

        def _begin(self, logs=None) -> None:
            self.start = time.perf_counter()

        on_train_begin = on_predict_begin = _begin

        def _batch_end(self, logs) -> bool:
            keras.tree.map_structure(np.asarray, logs or {})
            self.batches += 1
            self.end = time.perf_counter()
            return self.end - self.start >= self.seconds

        def on_train_batch_end(self, batch, logs=None) -> None:
            if self._batch_end(logs):
                self.model.stop_training = True

        def on_predict_batch_end(self, batch, logs=None) -> None:
            if self._batch_end(logs):
                self.model.stop_predicting = True

    from attention_zoo.training.policy import cpu_description, cpu_has_bf16

    assert keras.backend.backend() == backend, keras.backend.backend()
    threads = None
    if backend == "torch":
        import torch

        threads = torch.get_num_threads()
    _emit(event="ready", cpu=cpu_description(), bf16=cpu_has_bf16(), torch_threads=threads)
    groups: dict[tuple, list[dict]] = {}
    for phase in phases:
        groups.setdefault((phase["model"], phase["precision"], phase["jit"]), []).append(phase)
    for (name, precision, jit), group in groups.items():
        _emit(event="build", key=group[0]["key"])
        try:
            keras.backend.clear_session()  # the previous group's model and graphs
            keras.config.set_dtype_policy(precision)
            keras.utils.set_random_seed(0)
            model = _build(name)
            keras.config.set_dtype_policy("float32")
            classes = model.outputs[0].shape[-1]
            batch = BATCH[name]
            count = batch * max(p["warmup"] + p["steps"] for p in group)
            x, y = _data(name, count, classes)
            model.compile(keras.optimizers.SGD(0.01, momentum=0.9),
                          "categorical_crossentropy", jit_compile=jit)
            info = {"params": model.count_params(), "jit_ran": bool(model.jit_compile)}
        except Exception as error:  # noqa: BLE001  reported in the cell
            for phase in group:
                _emit(event="error", key=phase["key"], error=_last_line(error))
            keras.config.set_dtype_policy("float32")
            continue
        for phase in group:
            warm, steps = phase["warmup"], phase["steps"]
            _emit(event="compile", key=phase["key"])
            try:
                start = time.perf_counter()
                if phase["mode"] == "train":
                    model.fit(x[:warm * batch], y[:warm * batch], batch_size=batch,
                              epochs=1, shuffle=False, verbose=0)
                else:
                    model.predict(x[:warm * batch], batch_size=batch, verbose=0)
                warmup_s = time.perf_counter() - start
                _emit(event="timing", key=phase["key"])
                clock = Clock(phase["seconds"])
                if phase["mode"] == "train":
                    model.fit(x[:steps * batch], y[:steps * batch], batch_size=batch,
                              epochs=1, shuffle=False, verbose=0, callbacks=[clock])
                else:
                    model.predict(x[:steps * batch], batch_size=batch, verbose=0,
                                  callbacks=[clock])
                seconds = clock.end - clock.start
                _emit(event="result", key=phase["key"], steps=clock.batches,
                      ex_s=clock.batches * batch / seconds, seconds=seconds,
                      warmup_s=warmup_s, **info)
            except Exception as error:  # noqa: BLE001  reported in the cell
                _emit(event="error", key=phase["key"], error=_last_line(error))


# ---------------------------------------------------------------- the parent


def _key(model: str, precision: str, jit: bool, mode: str) -> str:
    return f"{model}|{precision}|{int(jit)}|{mode}"


class Worker:
    """A worker process whose marked stdout lines arrive on a queue."""

    def __init__(self, backend: str, phases: list[dict]) -> None:
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", backend,
             json.dumps(phases)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=self.stderr, text=True,
            start_new_session=True)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            if line.startswith(MARK):
                self.lines.put(json.loads(line[len(MARK):]))
        self.lines.put(None)  # the worker's stdout closed: it ended

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, 9)  # the worker and anything it started
        self.process.wait()

    def last_error_line(self) -> str:
        self.stderr.seek(0)
        lines = [line.strip() for line in self.stderr.read().splitlines()
                 if line.strip() and not line.startswith(NOISE)]
        return lines[-1] if lines else f"worker exited with status {self.process.returncode}"


def run_backend(backend: str, phases: list[dict], caps: dict, budget: float,
                progress, machine: dict) -> dict:
    """Results by phase key: a dict with ex_s, or with cell (the text of a
    failure). Restarts a worker after a time-out or a crash, with the phases
    left; a backend that outlasts ``budget`` seconds gets its phases left
    reported as not run. ``machine`` gets the CPU a worker reports."""
    results: dict[str, dict] = {}
    started = time.perf_counter()

    def blame(key: str | None, cell: str, group: bool = False) -> None:
        pending = [p["key"] for p in phases if p["key"] not in results]
        if key is None or key in results:
            key = pending[0] if pending else None
        if key is None:
            return
        prefix = key.rsplit("|", 1)[0] + "|"
        for other in (pending if group else [key]):
            if other.startswith(prefix):
                results[other] = {"cell": cell}
                progress(backend, other, results[other])

    while True:
        left = [p for p in phases if p["key"] not in results]
        if not left:
            break
        if time.perf_counter() - started >= budget:
            for phase in left:
                results[phase["key"]] = {"cell": f"not run: {backend}'s share of "
                                                 f"--budget ({budget:.0f} s) spent"}
                progress(backend, phase["key"], results[phase["key"]])
            break
        worker_ = Worker(backend, left)
        stage, key, since = "start", None, time.perf_counter()
        try:
            while True:
                now = time.perf_counter()
                wait = min(caps[stage] - (now - since), budget - (now - started))
                try:
                    event = worker_.lines.get(timeout=max(wait, 0.01))
                except queue.Empty:
                    if budget - (time.perf_counter() - started) <= 0:
                        blame(key, f"stopped: {backend}'s share of --budget "
                                   f"({budget:.0f} s) spent")
                    elif stage == "compile":
                        blame(key, f"compile > {caps['compile']:.0f} s")
                    else:
                        what = {"timing": "timed steps", "build": "build"}.get(stage, "start-up")
                        blame(key, f"timed out: {what} > {caps[stage]:.0f} s",
                              group=stage != "timing")
                    break
                if event is None:  # the worker ended: crashed, or every phase done
                    worker_.process.wait()
                    blame(key, worker_.last_error_line())
                    break
                stage, key, since = event["event"], event.get("key"), time.perf_counter()
                if stage == "ready":
                    machine.update(cpu=event["cpu"], bf16=event["bf16"])
                    if event.get("torch_threads"):
                        machine["torch_threads"] = event["torch_threads"]
                if stage in ("result", "error"):
                    results[key] = event if stage == "result" else {"cell": event["error"]}
                    progress(backend, key, results[key])
                    stage = "build"  # until the next phase's first event
        finally:
            worker_.stop()
    return results


def _jit_label(backend: str, jit: bool) -> str:
    if not jit:
        return "off (eager)" if backend == "jax" else "off"
    return COMPILERS[backend]


def _rate(r: dict | None) -> str:
    if r is None:
        return "-"
    if "cell" in r:
        return r["cell"].replace("|", "\\|").replace("\n", " ")[:160]
    return f"{r['ex_s']:.1f}"


def _relative(r: dict | None, base: dict | None) -> str:
    if not r or "ex_s" not in r or not base or "ex_s" not in base:
        return "-"
    return f"{r['ex_s'] / base['ex_s']:.2f}x"


def _steps(r: dict | None) -> str:
    return str(r["steps"]) if r and "steps" in r else "-"


def _warmup(r: dict | None) -> str:
    return f"{r['warmup_s']:.1f}" if r and "warmup_s" in r else "-"


def _versions(torch_threads: int | None = None) -> str:
    version = _common.version
    return (f"Keras {version('keras')}, TensorFlow {version('tensorflow')}, "
            f"JAX {version('jax')} (jaxlib {version('jaxlib')}), "
            f"PyTorch {version('torch')}"
            + (f" ({torch_threads} intra-op threads)" if torch_threads else "")
            + f", Python {platform.python_version()}")


def markdown(args, results: dict, command: str, seconds: float, machine: dict) -> str:
    """``machine``: ``bf16``, ``training.policy.cpu_has_bf16()`` as a
    worker found it (this process does not import the package, or
    TensorFlow), and ``torch_threads``."""
    bf16 = {True: "has native bfloat16 (avx512_bf16 or amx_bf16)",
            False: "has no native bfloat16 (neither avx512_bf16 nor amx_bf16 in "
                   "/proc/cpuinfo)"}.get(machine.get("bf16"), "was not probed")
    lines = [
        "# AttnCNN and the text classifier on Keras's three backends (CPU)",
        "",
        "Training and inference throughput (examples per second) of the zoo's two "
        "model kinds on Keras's TensorFlow, JAX and PyTorch backends on this CPU, "
        "each backend in worker processes of its own (`KERAS_BACKEND`), for "
        "float32 and mixed_bfloat16 (`keras.config.set_dtype_policy` before "
        "building), without and with the backend's compiler (`jit_compile=True`: "
        "XLA on TensorFlow, jax.jit on JAX, torch.compile on PyTorch; on JAX "
        "`jit_compile=False` runs op by op). Train: `model.compile(SGD(0.01, "
        "momentum=0.9), \"categorical_crossentropy\", jit_compile=J)`, a warm-up "
        "`model.fit` epoch (tracing and compiling; not timed, its seconds in the "
        "last column), then a timed `model.fit` epoch on in-memory NumPy arrays, "
        "stopped after the first step that ends "
        f"{args.timed_seconds:g} s or more after its start (the steps it ran in the "
        "column before); its time runs from the start of training to the end of its "
        "last step. Predict: the same with `model.predict`. Synthetic inputs: random "
        "pixels 0..255 for AttnCNN (its whitening stem as built, not adapted to "
        "them), random token ids with random lengths 20..128 padded with 0 for the "
        "text model. Single measurements, no repeats. \"vs TF float32\": "
        "throughput over TensorFlow's float32 without jit on the same model. "
        f"\"compile > N s\": a warm-up stopped after --compile-cap "
        f"({args.compile_cap:.0f} s); \"not run\": past the run's --budget "
        f"({args.budget:.0f} s); other failures show the error's last line.",
        "",
        f"$ {command}",
        "",
        f"CPU: {_common.cpu_lines()}. The CPU {bf16}. "
        f"{_versions(machine.get('torch_threads'))}. "
        f"{_common.made_on(seconds)}",
    ]
    for name in args.models:
        params = next((r["params"] for k, r in results.items()
                       if k[1].startswith(name + "|") and "params" in r), None)
        batch = BATCH[name]
        steps = {mode: steps_for(name, mode, "tensorflow", True, args.quick) for mode in MODES}
        notes = []
        if "torch" in args.backends and True in args.jit:
            notes.append(f"torch.compile: {steps_for(name, 'train', 'torch', True, args.quick)[0]}"
                         " warm-up training steps")
        if "jax" in args.backends and False in args.jit:
            eager = steps_for(name, "train", "jax", False, args.quick)[1]
            if eager != steps["train"][1]:
                notes.append(f"JAX without jit: at most {eager} timed steps and batches")
        lines += [
            "",
            f"## {TITLES[name][0].upper() + TITLES[name][1:]}",
            "",
            (f"{params:,} parameters; " if params else "")
            + f"batch {batch}; train: {steps['train'][0]} warm-up step, then at most "
            f"{steps['train'][1]} timed steps; predict: {steps['predict'][0]} warm-up "
            f"batch, then at most {steps['predict'][1]} timed batches"
            + (f" ({'; '.join(notes)})" if notes else "") + ".",
            "",
            "| backend | precision | jit | train ex/s | predict ex/s | train vs TF "
            "float32 | predict vs TF float32 | timed steps train / predict "
            "| warm-up s train / predict |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        base = {mode: results.get(("tensorflow", _key(name, "float32", False, mode)))
                for mode in MODES}
        for backend in args.backends:
            for precision in args.precisions:
                for jit in args.jit:
                    r = {mode: results.get((backend, _key(name, precision, jit, mode)))
                         for mode in MODES}
                    label = _jit_label(backend, jit)
                    if jit and any(x and x.get("jit_ran") is False for x in r.values()):
                        label += " (Keras turned it off)"
                    lines.append(
                        f"| {backend} | {precision} | {label} | {_rate(r['train'])} "
                        f"| {_rate(r['predict'])} "
                        f"| {_relative(r['train'], base['train'])} "
                        f"| {_relative(r['predict'], base['predict'])} "
                        f"| {_steps(r['train'])} / {_steps(r['predict'])} "
                        f"| {_warmup(r['train'])} / {_warmup(r['predict'])} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=list(BATCH), default=list(BATCH))
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS,
                        default=list(PRECISIONS))
    parser.add_argument("--jit", nargs="+", choices=["off", "on"], default=["off", "on"])
    parser.add_argument("--compile-cap", type=float, default=120,
                        help="seconds a warm-up (tracing, compiling) may take "
                             "(default 120)")
    parser.add_argument("--timed-seconds", type=float, default=8,
                        help="a timed fit or predict stops after the first step "
                             "that ends this many seconds after its start (default 8)")
    parser.add_argument("--timed-cap", type=float, default=150,
                        help="seconds after which a timed call still running is "
                             "killed (default 150)")
    parser.add_argument("--budget", type=float, default=720,
                        help="seconds the whole run may take (default 720): each "
                             "backend gets an equal share of what is left when it "
                             "starts; measurements past its share are reported as "
                             "not run")
    parser.add_argument("--quick", action="store_true",
                        help="1 warm-up and 2 timed steps of everything: tests the "
                             "script, measures nothing worth keeping")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "backends.md"))
    parser.add_argument("--worker", nargs=2, metavar=("BACKEND", "PHASES"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], json.loads(args.worker[1]))
        return
    args.jit = [j == "on" for j in args.jit]
    caps = {"start": 240, "ready": 240, "build": 240, "compile": args.compile_cap,
            "timing": args.timed_cap}
    command = _common.command()
    print(f"$ {command}", flush=True)
    started = time.perf_counter()

    def progress(backend: str, key: str, r: dict) -> None:
        model, precision, jit, mode = key.split("|")
        head = f"[{backend}] {model} {precision} jit {'on' if jit == '1' else 'off'}"
        if "ex_s" in r:
            print(f"{head}: {mode} {r['ex_s']:.1f} ex/s (warm-up {r['warmup_s']:.1f} s, "
                  f"timed: {r['steps']} steps in {r['seconds']:.1f} s)", flush=True)
        else:
            print(f"{head}: {mode} {r['cell']}", flush=True)

    results: dict[tuple[str, str], dict] = {}
    machine: dict = {}
    for backend in args.backends:
        phases = []
        # Without jit first, float32 first: a run cut short by --budget loses
        # the compiled rows, whose warm-ups take longest.
        for jit in args.jit:
            for precision in args.precisions:
                for model in args.models:
                    for mode in MODES:
                        warm, steps = steps_for(model, mode, backend, jit, args.quick)
                        phases.append({"key": _key(model, precision, jit, mode),
                                       "model": model, "precision": precision,
                                       "jit": jit, "mode": mode, "warmup": warm,
                                       "steps": steps, "seconds": args.timed_seconds})
        begun = time.perf_counter()
        share = (args.budget - (begun - started)) / (len(args.backends)
                                                     - args.backends.index(backend))
        found = run_backend(backend, phases, caps, share, progress, machine)
        print(f"[{backend}] done in {time.perf_counter() - begun:.0f} s", flush=True)
        results.update({(backend, key): r for key, r in found.items()})
    seconds = time.perf_counter() - started
    out = Path(args.out)
    _common.write_text(out, markdown(args, results, command, seconds, machine))
    print(f"wrote {out} ({seconds / 60:.1f} min)", flush=True)


if __name__ == "__main__":
    main()
