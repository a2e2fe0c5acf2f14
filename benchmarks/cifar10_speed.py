"""AttnCNN training and inference speed for each precision and XLA setting.

Usage: python benchmarks/cifar10_speed.py [--attention cbam] [--width W W W] [--steps 12]
       [--repeats 2] [--batch 512] [--optimizer sgd|recipe] [--only POLICY:XLA ...]
       [--kernels fast|keras|batchnorm|conv]
Writes a Markdown table to stdout (committed as one section per CPU of
benchmarks/cifar10_speed.md, with the command, date and CPU above it).
Synthetic pixels: speed does not depend on the data. Each setting runs in a
fresh process and reports the fastest of `--repeats` timed passes: measured
one after another in one process with a single pass each, the wide net's
mixed_bfloat16 training came out at 150 images/s, against 194-235 in full
training runs on the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import attention_zoo  # noqa: E402,F401  before TensorFlow: oneDNN as users get it
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from attention_zoo.cli.common import attention_argument  # noqa: E402
from attention_zoo.models import AttnCNN, cpu_kernels  # noqa: E402
from attention_zoo.models.cards import machine  # noqa: E402
from attention_zoo.training.policy import onednn_enabled  # noqa: E402


def forward_flops(model: keras.Model) -> float:
    """FLOPs of one forward pass of one image, counted by TF's profiler."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)

    spec = tf.TensorSpec((1, *model.inputs[0].shape[1:]), tf.float32)
    concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    frozen = convert_variables_to_constants_v2(concrete)
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    info = tf.compat.v1.profiler.profile(graph=frozen.graph, options=options)
    return float(info.total_float_ops)


def make_optimizer(name: str, steps: int) -> keras.optimizers.Optimizer:
    """``"sgd"``: plain Nesterov SGD; ``"recipe"``: the default recipe's
    optimizer (MuonSGD), to see what its updates cost."""
    if name == "recipe":
        from attention_zoo import training

        return training.make_optimizer(training.get_recipe("cifar10"), steps)
    return keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True)


def use_keras_layers(kernels: str) -> None:
    """Builds AttnCNN from Keras's Conv2D and BatchNormalization in place of
    the package's CPU training kernels (models.cpu_kernels), to see what they
    save: "keras" swaps both, "batchnorm" keeps only the fused BatchNorm,
    "conv" only the convolution."""
    if kernels in ("keras", "batchnorm"):
        cpu_kernels.Conv2D = keras.layers.Conv2D
    if kernels in ("keras", "conv"):
        cpu_kernels.BatchNormalization = keras.layers.BatchNormalization


def measure(net: dict, policy: str, xla: bool, batch: int, steps: int,
            repeats: int, optimizer: str = "sgd", kernels: str = "fast") -> dict:
    use_keras_layers(kernels)
    keras.config.set_dtype_policy(policy)
    keras.utils.set_random_seed(0)
    model = AttnCNN(**net)
    keras.config.set_dtype_policy("float32")
    model.compile(make_optimizer(optimizer, steps), "categorical_crossentropy",
                  jit_compile=xla)
    x = np.random.default_rng(0).integers(0, 256, (batch * steps, 32, 32, 3)).astype("float32")
    y = keras.utils.to_categorical(np.arange(batch * steps) % 10, 10)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).cache()
    model.fit(data.take(2), epochs=1, verbose=0)  # trace and compile
    images = data.map(lambda a, b: a)
    model.predict(images.take(2), verbose=0)

    def best(run) -> tuple[float, float]:
        """Images/s of the fastest pass, and the process CPU seconds per
        image of that pass (the host can give this VM less than its cores
        without it showing: CPU time is steadier than wall time)."""
        passes = []
        for _ in range(repeats):
            start, cpu = time.perf_counter(), time.process_time()
            run()
            passes.append((time.perf_counter() - start, time.process_time() - cpu))
        wall, cpu = min(passes)
        return batch * steps / wall, cpu / (batch * steps)

    train, train_cpu = best(lambda: model.fit(data, epochs=1, verbose=0))
    infer, infer_cpu = best(lambda: model.predict(images, verbose=0))
    return {"train": train, "infer": infer, "train_cpu_ms": 1e3 * train_cpu,
            "infer_cpu_ms": 1e3 * infer_cpu}


def measure_in_fresh_process(args: argparse.Namespace, policy: str, xla: bool) -> dict:
    command = [sys.executable, __file__, "--one", policy, str(int(xla)),
               "--attention", args.attention, "--batch", str(args.batch),
               "--steps", str(args.steps), "--repeats", str(args.repeats),
               "--optimizer", args.optimizer, "--kernels", args.kernels]
    if args.width:
        command += ["--width", *map(str, args.width)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--attention", default="cbam")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--width", nargs="+", type=int, help="default: the model's")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--optimizer", choices=["sgd", "recipe"], default="sgd")
    parser.add_argument("--kernels", choices=["fast", "keras", "batchnorm", "conv"],
                        default="fast", help="AttnCNN's CPU training kernels (fast, the "
                        "default), Keras's layers, or one of the two kernels only")
    parser.add_argument("--only", nargs="+", metavar="POLICY:XLA",
                        help="settings to measure, e.g. mixed_bfloat16:0 (default: all four)")
    parser.add_argument("--one", nargs=2, metavar=("POLICY", "XLA"),
                        help=argparse.SUPPRESS)  # one setting, JSON out
    args = parser.parse_args()

    # The CLI's parsing of --attention ("none", one name, or a,b,c per stage);
    # args.attention stays the raw string so fresh processes get it as given.
    net = {"attention": attention_argument(args.attention),
           **({"width": args.width} if args.width else {})}
    if args.one:
        print(json.dumps(measure(net, args.one[0], bool(int(args.one[1])), args.batch,
                                 args.steps, args.repeats, args.optimizer, args.kernels)))
        return
    settings = [(p, x) for p in ("float32", "mixed_bfloat16") for x in (False, True)]
    if args.only:
        try:
            settings = [(p, bool(int(x))) for p, x in (o.split(":") for o in args.only)]
        except ValueError:
            parser.error(f"--only expects POLICY:0|1 items, received {args.only}")
    model = AttnCNN(**net)
    flops = forward_flops(model)
    print(f"AttnCNN({', '.join(f'{k}={v!r}' for k, v in net.items())}), "
          f"{model.count_params():,} parameters, batch {args.batch}, "
          f"{args.steps} timed steps, fastest of {args.repeats}, optimizer {args.optimizer}, "
          f"{args.kernels} kernels; "
          f"{machine()}, oneDNN {'on' if onednn_enabled() else 'off'}, TF {tf.__version__}, "
          f"Keras {keras.__version__}\n")
    print(f"forward FLOPs per image: {flops / 1e6:.1f} M "
          f"(training step ~3x: {3 * flops / 1e6:.0f} M)\n")
    print("| precision | XLA | train images/s | train GFLOP/s | inference images/s | "
          "train CPU ms/image | inference CPU ms/image |")
    print("|---|---|---|---|---|---|---|")
    for policy, xla in settings:
        r = measure_in_fresh_process(args, policy, xla)
        print(f"| {policy} | {'on' if xla else 'off'} | {r['train']:.0f} | "
              f"{r['train'] * 3 * flops / 1e9:.1f} | {r['infer']:.0f} | "
              f"{r['train_cpu_ms']:.1f} | {r['infer_cpu_ms']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
