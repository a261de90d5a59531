"""A per-image measurement: a value computed once from each decoded picture, cached by the
picture's bytes, for an image check that needs more than the pass's own facts.

    brightness = Measurement("brightness-v1", lambda rgb: float(np.asarray(rgb).mean()))
    images.prepare(ds, context, visitor=brightness)   # in the rule's prepare hook
    ...
    brightness.values[row]                              # in check, after the pass

The name carries the version: change what ``compute`` returns, change the name, and the cached
values of the old one are never read. A value must be JSON (numbers, strings, lists, dicts); a
picture the pass could not decode has none. ``check`` (optional) accepts or rejects a cached
value: one it rejects is measured again.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from labellint.images.scanning import Visitor


class Measurement(Visitor):
    def __init__(self, name: str, compute: Callable[[Any], Any], check: Callable[[Any], bool] | None = None):
        self.name = name
        self.compute = compute
        self.check = check or (lambda value: True)
        self.values: dict[int, Any] = {}  # image row -> value
        self.measured = 0  # pictures measured in this run (the rest came from the cache)
        self.cache = None  # the pass's cache (attach)
        self._digests: dict[int, str] = {}
        self._lock = threading.Lock()

    def attach(self, cache) -> None:
        self.cache = cache

    def wants_pixels(self, row: int, info) -> bool:
        if not info.decoded:
            return False
        if info.digest and self.cache is not None:
            stored = self.cache.get_measure(self.name, info.digest)
            if stored is not None and self.check(stored):
                self.values[row] = stored
                return False
            self._digests[row] = info.digest
        return True

    def cut(self, row: int, rgb, info, exif_applied: bool):
        return self.compute(rgb)  # in a decode thread, on the RGB picture as the boxes see it

    def take(self, row: int, value) -> None:
        with self._lock:
            self.values[row] = value
            self.measured += 1
        digest = self._digests.get(row)
        if digest is not None:
            self.cache.put_measure(self.name, digest, value)
