"""The garbage collector paused while a decoder makes millions of small objects."""

from __future__ import annotations

import gc
from contextlib import contextmanager


@contextmanager
def gc_paused():
    """Decoded Structs and values hold no reference cycles: the collections their numbers would
    trigger find nothing, and rescan every object each time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
