"""The last step of every pipeline here: prefetching, with tf.data's
autotuning model turned off."""

from __future__ import annotations

from typing import Any


def prefetched(ds: Any) -> Any:
    """``ds.prefetch(AUTOTUNE)`` with ``options.autotune.enabled = False``.

    Why: ``model.fit`` makes a new iterator every epoch, and destroying the
    old one waits for that iterator's autotuning thread, which finishes its
    current sleep between optimizations first (the period doubles up to 60
    s). On the default AttnCNN run that stalled 2 to 6 of every 9 epoch
    starts by 17-71 s with no CPU in use (a gdb dump of one:
    ``RootDataset::Iterator::~Iterator`` waiting on ``Model::OptimizeLoop``;
    ``benchmarks/cifar10_epochs.md``). These pipelines hold their data in
    memory and do little per batch, so there is little to tune: an
    ``AUTOTUNE`` map then runs a fixed min(16, cores) calls at once, and the
    prefetch buffer still grows when it runs dry (tf.data's prefetch
    autotuner, separate from the model).
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.prefetch(tf.data.AUTOTUNE).with_options(options)
