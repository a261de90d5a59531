"""Image access: resolve each ``file_name`` under the image root, read and decode every image once.

One pass per Dataset (:func:`scan`, the engine's "images" pass) serves every rule that reads
pictures: the image rules (LL4xx) read its :class:`ImageInfo` records and the embedding rules
(LL5xx) register a *visitor* that cuts their crops from the same decode. The pass state lives on
the Dataset, so a rule that configures it (a limit, a visitor) does so in its ``prepare`` hook,
before the engine runs it.

Modules: ``info`` (what is learnt about an image, and its cache record), ``paths`` (file_name to
path, under the root), ``files`` (reading within limits), ``pixels`` (decode, RGB, EXIF, hashes),
``scanning`` (the pass), ``measure`` (a value computed once per picture and cached: the way to
add a per-image measurement, without editing the pass or its cache record).

Safety: a ``file_name`` that is absolute, holds ``..`` or resolves (through a symlink) outside the
image root is refused, never opened. Every filesystem call on a dataset's path is guarded: whatever
the operating system says (a name too long, a folder that cannot be searched, a special file) ends
as that image's finding, never as an error that loses the whole file. Only a regular file is read
(a FIFO cannot block the pass), its size checked before a byte is read (``max_image_bytes``), its
header read before its pixels (PIL opens lazily) so that an over-limit picture is refused without
being loaded; PIL's pixel limit is set for the pass, so a decompression bomb is stopped at its header.
"""

from labellint.images.files import _open, _read_whole, read_file
from labellint.images.info import (DEFAULT_MAX_PIXELS, MAX_BYTES_LIMIT, MISSING, OK, SCAN_VERSION, TOO_LARGE,
                                   UNREADABLE, UNSAFE, ImageInfo, info_from_json, info_to_json)
from labellint.images.measure import Measurement
from labellint.images.paths import resolve
from labellint.images.pixels import (SAME_PICTURE_TOLERANCE, decode, exif_applies, hamming, near_pairs, phash,
                                     same_picture, thumbnail, to_rgb, upright)
from labellint.images.scanning import (ScanConfig, Visitor, config_from, default_threads, open_pass, prepare, scan,
                                       scanned, state)

__all__ = ["DEFAULT_MAX_PIXELS", "MAX_BYTES_LIMIT", "MISSING", "OK", "SCAN_VERSION", "TOO_LARGE", "UNREADABLE",
           "UNSAFE", "ImageInfo", "Measurement", "SAME_PICTURE_TOLERANCE", "ScanConfig", "Visitor", "config_from", "decode",
           "default_threads", "exif_applies", "hamming", "info_from_json", "info_to_json", "near_pairs", "open_pass",
           "phash", "prepare", "read_file", "resolve", "same_picture", "scan", "scanned", "state", "thumbnail",
           "to_rgb", "upright"]
