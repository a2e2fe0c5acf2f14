"""``attention-zoo export``: a shipped model or ``.keras`` file to a verified
SavedModel, TFLite or ONNX export (``attention_zoo.export.export``)."""

from __future__ import annotations

import argparse
import json
import sys

from attention_zoo.cli.common import load_model, takes_text


def cmd_export(args: argparse.Namespace) -> int:
    import numpy as np

    from attention_zoo import export

    if args.quantize == "int8" and not args.data:
        raise ValueError("--quantize int8 needs --data: training images (a folder "
                         "or zip) or, for a text model, a label<TAB>text file to "
                         "calibrate on")
    model = load_model(args.model)
    if args.tta:
        from attention_zoo import models

        try:
            model = models.with_tta(model, args.tta)
        except (ValueError, TypeError) as error:
            raise ValueError(f"--tta {args.tta}: {error}") from error
    # Refused paths are refused before the calibration data load.
    export.check_path(args.out, args.format, args.overwrite, model.name)
    representative = None
    if args.quantize == "int8":
        from attention_zoo import data

        rng = np.random.default_rng(0)
        if takes_text(model):
            texts = data.text_tsv(args.data).texts
            pick = rng.choice(len(texts), min(args.calibration, len(texts)),
                              replace=False)
            representative = [texts[i] for i in pick]  # N texts
        else:
            # val_per_class=None: CIFAR-10's split, or one that fits a small folder.
            train_set, _ = data.cifar10(args.data, val_per_class=None)
            pick = rng.choice(len(train_set), min(args.calibration, len(train_set)),
                              replace=False)
            representative = train_set.images[pick].astype("float32")  # (N, H, W, C)
    batch_size = None if args.dynamic_batch else 1 if args.fixed_batch else "auto"
    report = export.export(model, args.out, format=args.format, quantize=args.quantize,
                           representative_data=representative, batch_size=batch_size,
                           overwrite=args.overwrite, min_agreement=args.min_agreement,
                           log=lambda line: print(line, file=sys.stderr, flush=True))
    print(json.dumps(report, indent=2, default=str))
    return 0
