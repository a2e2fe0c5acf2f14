"""AttnCNN on an accelerator: does the mixed_float16 + XLA path train, and
how fast is it against float32, XLA on and off?

Runs on any Keras backend (the H100 that checked it had no TensorFlow wheel
that fits its transfer limit, so it ran with KERAS_BACKEND=jax; the layers
use keras.ops only). The data is an .npz of uint8 images made with
``--make-npz`` from the CIFAR-10 zip, so the accelerator needs no JPEG
decoding. Training uses the recipe's optimizer, loss and schedule, with
flip + translate augmentation done on the host in NumPy before training
(so images/s counts the steps alone), in one fit() over every epoch's
augmented copy. Each configuration runs in a fresh process. Prints a
Markdown table.

Usage:
  python benchmarks/gpu_check.py --make-npz ZIP OUT.npz [--train 10000 --val 2000]
  KERAS_BACKEND=jax python benchmarks/gpu_check.py --data OUT.npz [--epochs 8]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

CONFIGS = [("float32", False), ("float32", True), ("mixed_float16", False),
           ("mixed_float16", True), ("mixed_bfloat16", True)]


def make_npz(zip_path: str, out: str, train: int, val: int) -> None:
    from attention_zoo import data

    train_set, val_set = data.cifar10(zip_path)
    rng = np.random.default_rng(0)
    t = rng.permutation(len(train_set))[:train]
    v = rng.permutation(len(val_set))[:val]
    np.savez_compressed(out, x_train=train_set.images[t], y_train=train_set.labels[t],
                        x_val=val_set.images[v], y_val=val_set.labels[v])


def augment(x: np.ndarray, rng: np.random.Generator, translate: int = 2) -> np.ndarray:
    """Random flips and per-image shifts of up to ``translate`` pixels
    (reflected borders), as the package's tf.data pipeline does."""
    flip = rng.random(len(x)) < 0.5
    x = np.where(flip[:, None, None, None], x[:, :, ::-1], x)
    size = 2 * translate + 1
    padded = np.pad(x, [(0, 0), (translate, translate), (translate, translate), (0, 0)],
                    mode="reflect")
    shift = rng.integers(0, size * size, len(x))
    out = np.empty_like(x)
    for k in range(size * size):
        dy, dx, pick = k // size, k % size, shift == k
        out[pick] = padded[pick, dy:dy + x.shape[1], dx:dx + x.shape[2]]
    return out


def epoch_clock(steps: int):
    """A callback that times every ``steps`` batches: one pass of fit() over
    all epochs' augmented copies, so the compiled step is reused throughout."""
    import keras

    class EpochClock(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.marks, self.losses = [time.perf_counter()], []

        def on_train_batch_end(self, batch, logs=None):
            if (batch + 1) % steps == 0:
                self.marks.append(time.perf_counter())
                self.losses.append(float(logs["loss"]))

    return EpochClock()


def run(policy: str, jit: bool, arrays: dict, epochs: int, width: list[int] | None,
        recipe_name: str) -> dict:
    import keras

    from attention_zoo import training
    from attention_zoo.models import AttnCNN
    from attention_zoo.models.whitening import adapt_whitening

    keras.utils.set_random_seed(0)
    keras.config.set_dtype_policy(policy)
    try:
        model = AttnCNN(**({"width": width} if width else {}))
    finally:
        keras.config.set_dtype_policy("float32")
    x, y = arrays["x_train"], arrays["y_train"]
    adapt_whitening(model, x[:5000].astype("float32"))
    recipe = training.get_recipe(recipe_name, epochs=epochs)
    steps = len(x) // recipe.batch_size
    used = steps * recipe.batch_size
    model.compile(optimizer=training.make_optimizer(recipe, steps),
                  loss=keras.losses.CategoricalCrossentropy(
                      label_smoothing=recipe.label_smoothing),
                  metrics=["accuracy"], jit_compile=jit)
    rng = np.random.default_rng(0)
    order = [rng.permutation(len(x))[:used] for _ in range(epochs)]
    x_all = np.concatenate([augment(x[o], rng) for o in order])
    y_all = np.eye(10, dtype="float32")[np.concatenate([y[o] for o in order])]
    clock = epoch_clock(steps)
    model.fit(x_all, y_all, batch_size=recipe.batch_size, epochs=1, shuffle=False,
              callbacks=[clock], verbose=0)
    seconds = np.diff(clock.marks)
    x_val = arrays["x_val"].astype("float32")
    model.predict(x_val[:1000], batch_size=1000, verbose=0)  # compile
    start = time.perf_counter()
    probabilities = model.predict(x_val, batch_size=1000, verbose=0)
    infer = len(x_val) / (time.perf_counter() - start)
    steady = seconds[1:] if len(seconds) > 1 else seconds  # the first epoch compiles
    return {"policy": policy, "xla": jit, "first_epoch_s": float(seconds[0]),
            "train_images_per_s": used * len(steady) / float(np.sum(steady)),
            "infer_images_per_s": infer, "loss_first": clock.losses[0],
            "loss_last": clock.losses[-1],
            "finite": bool(np.all(np.isfinite(clock.losses))),
            "val_accuracy": float(np.mean(probabilities.argmax(-1) == arrays["y_val"]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--make-npz", nargs=2, metavar=("ZIP", "OUT"))
    parser.add_argument("--train", type=int, default=10000)
    parser.add_argument("--val", type=int, default=2000)
    parser.add_argument("--data", help="the .npz made by --make-npz")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--width", type=int, nargs=3)
    parser.add_argument("--recipe", default="cifar10")
    parser.add_argument("--only", help="POLICY:XLA (0/1), one configuration in this "
                        "process; without it each runs in a fresh process")
    args = parser.parse_args()
    if args.make_npz:
        make_npz(*args.make_npz, args.train, args.val)
        return
    if not args.data:
        parser.error("--data (or --make-npz) is required")
    if args.only:
        policy, jit = args.only.split(":")
        r = run(policy, jit == "1", dict(np.load(args.data)), args.epochs, args.width,
                args.recipe)
        print(f"| {r['policy']} | {'on' if r['xla'] else 'off'} | {r['first_epoch_s']:.1f} | "
              f"{r['train_images_per_s']:.0f} | {r['infer_images_per_s']:.0f} | "
              f"{r['loss_first']:.3f} -> {r['loss_last']:.3f} | {r['finite']} | "
              f"{r['val_accuracy']:.4f} |", flush=True)
        return
    import subprocess
    import sys

    import keras

    arrays = dict(np.load(args.data))
    print(f"backend {keras.backend.backend()}, {len(arrays['x_train'])} training and "
          f"{len(arrays['x_val'])} validation images, recipe {args.recipe}, "
          f"{args.epochs} epochs")
    print("| precision | XLA | first epoch s | train images/s | inference images/s | "
          "loss epoch 1 -> last | finite | val accuracy |")
    print("|---|---|---|---|---|---|---|---|")
    for policy, jit in CONFIGS:
        command = [sys.executable, __file__, "--data", args.data, "--epochs",
                   str(args.epochs), "--recipe", args.recipe, "--only",
                   f"{policy}:{int(jit)}", *(["--width", *map(str, args.width)]
                                            if args.width else [])]
        done = subprocess.run(command, capture_output=True, text=True)
        rows = [line for line in done.stdout.splitlines() if line.startswith("|")]
        print(rows[-1] if rows and done.returncode == 0 else
              f"| {policy} | {'on' if jit else 'off'} | failed: "
              f"{(done.stderr.strip().splitlines() or ['?'])[-1][:200]} |", flush=True)


if __name__ == "__main__":
    main()
