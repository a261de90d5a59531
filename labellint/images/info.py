"""What the image pass learns about one image entry, and its record in the cache."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

#: Default decompression-bomb limit in pixels (about 16k x 16k); rule LL406 makes it configurable.
DEFAULT_MAX_PIXELS = 268_435_456

MAX_BYTES_LIMIT = "max_image_bytes"  # in labellint.limits; LL406's max_bytes overrides it

SCAN_VERSION = 3

# statuses of an ImageInfo, in the order a pass meets them
OK, UNSAFE, MISSING, TOO_LARGE, UNREADABLE = "ok", "unsafe", "missing", "too-large", "unreadable"

_TRANSPOSED = {5, 6, 7, 8}  # EXIF orientations that swap width and height


@dataclass
class ImageInfo:
    """What one pass learnt about one image entry (a row of ``ds.images``)."""

    status: str
    message: str = ""
    path: str | None = None  # resolved path, when it is inside the root
    digest: str | None = None  # sha256 of the file's bytes
    width: int | None = None  # as stored, before any EXIF rotation
    height: int | None = None
    mode: str | None = None
    format: str | None = None
    orientation: int = 1
    phash: int | None = None  # 64-bit perceptual hash of the picture
    thumb: str | None = None  # 64x64 grey thumbnail, hex: confirms that two close hashes are one picture
    truncated: bool = False

    @property
    def decoded(self) -> bool:
        return self.status == OK

    def displayed_size(self) -> tuple[int, int] | None:
        """(width, height) as a viewer that honours EXIF orientation shows it."""
        if self.width is None:
            return None
        if self.orientation in _TRANSPOSED:
            return self.height, self.width
        return self.width, self.height


def info_to_json(info: ImageInfo) -> str:
    d = asdict(info)
    d.pop("path", None)
    d["phash"] = None if info.phash is None else f"{info.phash:016x}"
    d["v"] = SCAN_VERSION
    return json.dumps(d)

_STATUSES = (OK, UNSAFE, MISSING, TOO_LARGE, UNREADABLE)

_HEX = frozenset("0123456789abcdef")


def info_from_json(text: str) -> ImageInfo | None:
    """A scan record read back from the cache, or None unless every field has its type and range
    (a record decides what the image rules see of an image that is not read again)."""
    try:
        d = json.loads(text)
    except ValueError:
        return None
    if not isinstance(d, dict) or d.pop("v", None) != SCAN_VERSION or set(d) != _RECORD_FIELDS:
        return None
    ph, thumb = d.pop("phash"), d["thumb"]

    def opt(value, kind) -> bool:
        return value is None or type(value) is kind

    ok = (d["status"] in _STATUSES and type(d["message"]) is str and len(d["message"]) <= 1000
          and opt(d["digest"], str) and opt(d["mode"], str) and opt(d["format"], str)
          and type(d["truncated"]) is bool and type(d["orientation"]) is int and 1 <= d["orientation"] <= 8
          and all(opt(d[k], int) and (d[k] is None or 0 < d[k] < 2**31) for k in ("width", "height"))
          and (d["status"] != OK or (d["width"] is not None and d["height"] is not None
                                     and ph is not None and thumb is not None))
          and (ph is None or (type(ph) is str and len(ph) == 16 and set(ph) <= _HEX))
          and (thumb is None or (type(thumb) is str and len(thumb) == 2 * 64 * 64 and set(thumb) <= _HEX)))
    if not ok:
        return None
    info = ImageInfo(**d)
    info.phash = None if ph is None else int(ph, 16)
    return info

_RECORD_FIELDS = frozenset(f for f in ImageInfo.__dataclass_fields__ if f != "path")
