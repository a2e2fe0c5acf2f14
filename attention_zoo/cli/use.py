"""Commands that use a trained model: ``layers``, ``demo``, ``evaluate``,
``predict`` (``export``: cli/export.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from attention_zoo.cli.common import class_names, load_model, takes_text


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
        # The demo's own plots, replaced on every run.
        cmd_predict(argparse.Namespace(model=name, inputs=inputs, top=3, tta=False,
                                       plot=str(out / f"{name}.{suffix}"),
                                       overwrite=True))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Accuracy on labelled data: a text file, all of a user's image folder
    or zip (or its last ``--val-per-class`` of each class), or without
    ``--data`` CIFAR-10's validation split of the training images."""
    from attention_zoo import data, training

    model = load_model(args.model)
    classes = int(model.outputs[0].shape[-1])
    names = class_names(args, classes, images=not takes_text(model))
    if takes_text(model):
        if not args.data:
            raise ValueError("a text model needs --data (a label<TAB>text file)")
        if args.tta:
            raise ValueError("--tta flips images; a text model has none")
        val_set = data.text_tsv(args.data)
        data.check_labels(val_set.labels, classes, repr(args.data), names)
        if args.val_fraction:
            _, val_set = data.stratified_split(val_set, args.val_fraction, args.seed)
        val_ds = data.text_pipeline(val_set, 256, one_hot=False)
        count = {"texts": len(val_set)}
    else:
        if args.val_fraction:
            raise ValueError("--val-fraction splits text files; for images pass "
                             "--val-per-class N (the last N images of each class)")
        if args.data is None:  # keras.datasets: the training split's hold-out
            _, val_set = data.cifar10(None, val_per_class=args.val_per_class or 500)
        else:
            val_set = data.labelled_images(args.data, class_names=names,
                                           image_size=tuple(model.inputs[0].shape[1:3]))
            if args.val_per_class:
                _, val_set = data.split_last_per_class(val_set, args.val_per_class)
        val_ds = data.pipeline(val_set, 1000, num_classes=classes)
        count = {"images": len(val_set), "tta": args.tta}
    accuracy = training.evaluate(model, val_ds, tta=args.tta)
    print(json.dumps({"model": args.model, **count,
                      "val_accuracy": round(accuracy, 4)}))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    if args.plot and Path(args.plot).exists() and not args.overwrite:
        raise ValueError(f"--plot {args.plot!r} exists; pass --overwrite to replace "
                         f"it, or another path")
    model = load_model(args.model)
    if takes_text(model):
        if args.tta:
            raise ValueError("--tta flips and shifts images; "
                             f"{args.model} is a text model")
        return _predict_text(args, model)
    return _predict_images(args, model)


def _predict_text(args: argparse.Namespace, model) -> int:
    import numpy as np

    from attention_zoo import inspect

    probabilities = model.predict(list(args.inputs), verbose=0)
    names = class_names(args, probabilities.shape[-1], images=False)
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

    images = []
    for path in args.inputs:
        if not Path(path).is_file():
            raise ValueError(f"no such image file: {path!r}")
        try:
            image = tf.io.decode_image(Path(path).read_bytes(), channels=3,
                                       expand_animations=False)
        except tf.errors.InvalidArgumentError:
            raise ValueError(f"cannot read image {path!r}: not a JPEG, PNG, BMP "
                             f"or GIF file, or a truncated one") from None
        size = tuple(model.inputs[0].shape[1:3])
        if tuple(image.shape[:2]) != size:
            image = tf.image.resize(image, size, antialias=True)
        images.append(np.asarray(image, np.float32))
    batch = np.stack(images)
    scorer = models.with_tta(model, args.tta) if args.tta else model
    probabilities = scorer.predict(batch, verbose=0)
    names = class_names(args, probabilities.shape[-1], images=True)
    titles = []
    for path, p in zip(args.inputs, probabilities):
        top = np.argsort(p)[::-1][:args.top]
        titles.append(f"{names[top[0]]} {p[top[0]]:.2f}")
        print(f"{path}: " + ", ".join(f"{names[i]} {p[i]:.3f}" for i in top))
    if args.plot:
        written = inspect.plot_attention(model, batch, args.plot, titles=titles)
        print(f"attention maps: {written}")
    return 0
