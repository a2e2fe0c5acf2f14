"""Building under a dtype policy without leaving it set.

Keras layers take the global dtype policy when they are constructed. The
zoo's backbones and tasks build their layers in their constructors, so a
model is built under a policy by constructing it inside
``global_dtype_policy(policy)``; the user's global policy is restored
afterwards, also when the constructor raises.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import keras


@contextlib.contextmanager
def global_dtype_policy(policy: Any) -> Iterator[None]:
    """Sets Keras's global dtype policy (a name such as ``"mixed_bfloat16"``
    or a ``keras.DTypePolicy``) for the ``with`` block, then restores it."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
