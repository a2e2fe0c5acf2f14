"""Commands that use a trained model: ``layers``, ``demo``, ``evaluate``,
``predict``, ``export``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from attention_zoo.cli.common import class_names, load_model


def cmd_layers(args: argparse.Namespace) -> int:
    from attention_zoo.layers import catalog

    rows = catalog.describe_all(width=args.width)
    print(catalog.format_table(rows))
    print(f"\n{len(rows)} layers built, run on random inputs and finite.")
    return 0


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


DEMO_TEXTS = ["a gripping , beautifully acted film", "dull , lifeless and far too long",
              "not bad at all", "i wanted my two hours back"]


def cmd_demo(args: argparse.Namespace) -> int:
    """The README's main job: every layer, then each shipped model on the
    sample inputs kept in the repository. Nothing is downloaded."""
    from attention_zoo import models

    cmd_layers(argparse.Namespace(width=64))
    shipped = models.pretrained()
    print(f"\nshipped models: {', '.join(shipped) or 'none'}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    images = sorted(str(p) for p in (EXAMPLES / "images").glob("*.jpg"))
    for name in shipped:
        print(f"\n== {name}")
        kind = models.card(name)["model"]
        inputs = images if kind == "attn_cnn" else DEMO_TEXTS
        suffix = "png" if kind == "attn_cnn" else "html"
        cmd_predict(argparse.Namespace(model=name, inputs=inputs, top=3, tta=False,
                                       plot=str(out / f"{name}.{suffix}")))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from attention_zoo import data, training

    model = load_model(args.model)
    if model.inputs[0].dtype == "string":
        if not args.data:
            raise SystemExit("attention-zoo evaluate: a text model needs --data "
                             "(a label<TAB>text file)")
        val_set = data.text_tsv(args.data)
        if args.val_fraction:
            _, val_set = data.stratified_split(val_set, args.val_fraction, args.seed)
        if args.tta:
            raise SystemExit("attention-zoo evaluate: --tta flips images; a text "
                             "model has none")
        val_ds = data.text_pipeline(val_set, 256, one_hot=False)
        count = {"texts": len(val_set)}
    else:
        _, val_set = data.cifar10(args.data, val_per_class=args.val_per_class)
        val_ds = data.pipeline(val_set, 1000)
        count = {"images": len(val_set), "tta": args.tta}
    accuracy = training.evaluate(model, val_ds, tta=args.tta)
    print(json.dumps({"model": args.model, **count,
                      "val_accuracy": round(accuracy, 4)}))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    model = load_model(args.model)
    if model.inputs[0].dtype == "string":
        if args.tta:
            raise SystemExit("attention-zoo predict: --tta flips and shifts images; "
                             f"{args.model} is a text model")
        return _predict_text(args, model)
    return _predict_images(args, model)


def _predict_text(args: argparse.Namespace, model) -> int:
    import numpy as np

    from attention_zoo import inspect

    probabilities = model.predict(list(args.inputs), verbose=0)
    names = class_names(args, probabilities.shape[-1])
    # A model without token attention (NBTextClassifier) predicts unexplained.
    explanations = (inspect.explain_text(model, list(args.inputs))
                    if inspect.has_token_attention(model) else None)
    captions = []
    for i, (text, p) in enumerate(zip(args.inputs, probabilities)):
        best = int(np.argmax(p))
        caption = f"{names[best]} {p[best]:.3f}"
        captions.append(caption)
        shown = text if len(text) <= 80 else text[:77] + "..."
        if explanations is None:
            print(f"{shown!r}: {caption}")
            continue
        top = sorted(explanations[i], key=lambda t: -t[1])[:args.top]
        print(f"{shown!r}: {caption}; most attended: "
              + ", ".join(f"{t} {w:.2f}" for t, w in top))
    if args.plot and explanations is None:
        print(f"no attention highlights: {model.name} has no token attention")
    elif args.plot:
        path = inspect.highlight_html(explanations, args.plot, captions)
        print(f"attention highlights: {path}")
    return 0


def _predict_images(args: argparse.Namespace, model) -> int:
    import numpy as np
    import tensorflow as tf

    from attention_zoo import inspect, models
    from attention_zoo.data.images import CIFAR10_CLASSES

    images = []
    for path in args.inputs:
        try:
            image = tf.io.decode_image(Path(path).read_bytes(), channels=3,
                                       expand_animations=False)
        except (OSError, tf.errors.InvalidArgumentError) as error:
            raise SystemExit(f"attention-zoo predict: cannot read image "
                             f"{path!r}: {error}")
        size = tuple(model.inputs[0].shape[1:3])
        if tuple(image.shape[:2]) != size:
            image = tf.image.resize(image, size, antialias=True)
        images.append(np.asarray(image, np.float32))
    batch = np.stack(images)
    scorer = models.with_tta(model, args.tta) if args.tta else model
    probabilities = scorer.predict(batch, verbose=0)
    names = (list(CIFAR10_CLASSES) if probabilities.shape[-1] == 10
             else class_names(args, probabilities.shape[-1]))
    titles = []
    for path, p in zip(args.inputs, probabilities):
        top = np.argsort(p)[::-1][:args.top]
        titles.append(f"{names[top[0]]} {p[top[0]]:.2f}")
        print(f"{path}: " + ", ".join(f"{names[i]} {p[i]:.3f}" for i in top))
    if args.plot:
        written = inspect.plot_attention(model, batch, args.plot, titles=titles)
        print(f"attention maps: {written}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import numpy as np

    from attention_zoo import export

    model = load_model(args.model)
    if args.tta:
        from attention_zoo import models

        try:
            model = models.with_tta(model, args.tta)
        except (ValueError, TypeError) as error:
            raise SystemExit(f"attention-zoo export: --tta: {error}")
    representative = None
    if args.quantize == "int8":
        if not args.data:
            raise SystemExit("attention-zoo export: --quantize int8 needs --data "
                             "(training images or texts to calibrate on)")
        from attention_zoo import data

        rng = np.random.default_rng(0)
        if model.inputs[0].dtype == "string":
            texts = data.text_tsv(args.data).texts
            pick = rng.choice(len(texts), min(args.calibration, len(texts)),
                              replace=False)
            representative = [[texts[i] for i in pick]]
        else:
            train_set, _ = data.cifar10(args.data)
            pick = rng.choice(len(train_set), args.calibration, replace=False)
            representative = [train_set.images[pick].astype("float32")]
    try:
        report = export.export(model, args.out, format=args.format,
                               quantize=args.quantize,
                               representative_data=representative,
                               batch_size=None if args.dynamic_batch else 1)
    except (ValueError, TypeError, export.ExportError) as error:
        raise SystemExit(f"attention-zoo export: {error}")
    print(json.dumps(report, indent=2, default=str))
    return 0
