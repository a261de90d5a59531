"""Reading an image file: a regular file within the byte limit, its header before its pixels."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from labellint import limits
from labellint.images.info import MAX_BYTES_LIMIT, MISSING, OK, TOO_LARGE, UNREADABLE, UNSAFE, ImageInfo
from labellint.images.pixels import _pixels_message, _why


_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)  # a FIFO answers at once instead of hanging
               | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0))


def _named(info: ImageInfo, file_name) -> ImageInfo:
    """LL401 says which file_name it refused; the other rules name the image themselves."""
    if info.status == UNSAFE:
        info.message = f"file_name '{file_name}' {info.message}"
    return info


def _os_failure(exc: OSError) -> tuple[str, str]:
    """(status, why) for what the operating system said about an image's path."""
    if isinstance(exc, (FileNotFoundError, NotADirectoryError)):
        return MISSING, ""
    if exc.errno == errno.ENAMETOOLONG:
        return MISSING, "its path is too long for the filesystem (File name too long)"
    if exc.errno == errno.ELOOP:
        return UNSAFE, "its path goes round a loop of symlinks"
    if isinstance(exc, IsADirectoryError):
        return UNREADABLE, "is a folder, not a file"
    return UNREADABLE, f"cannot be read: {exc.strerror or exc}"


def _open(path: Path, max_bytes: int):
    """(open binary file, its stat, None), or (None, None, ImageInfo saying why not): a regular
    file within the byte limit, checked on the open descriptor before anything is read."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        status, why = _os_failure(exc)
        return None, None, ImageInfo(status, why)
    fh = os.fdopen(fd, "rb")
    try:
        st = os.fstat(fh.fileno())
        if stat.S_ISDIR(st.st_mode):
            failed = ImageInfo(UNREADABLE, "is a folder, not a file")
        elif not stat.S_ISREG(st.st_mode):
            failed = ImageInfo(UNREADABLE, "is not a regular file (a FIFO, a device or a socket)")
        elif st.st_size > max_bytes:
            failed = ImageInfo(TOO_LARGE, _bytes_message(st.st_size, max_bytes))
        else:
            return fh, st, None
    except BaseException:
        fh.close()
        raise
    fh.close()
    return None, None, failed


def _read_whole(fh, size: int, max_bytes: int) -> tuple[bytes | None, ImageInfo | None]:
    """The file's bytes, never more than the byte limit (a file that grew past it is refused).

    ``size`` is what fstat said: read(n) allocates n bytes before reading, so it is asked for the
    file's size (plus one byte, to notice growth), never for the limit."""
    fh.seek(0)
    data = fh.read(min(size, max_bytes) + 1)
    if len(data) <= size:
        return data, None
    parts, total = [data], len(data)
    while total <= max_bytes:  # it grew while being read: go on, in pieces, up to the limit
        more = fh.read(min(1 << 20, max_bytes + 1 - total))
        if not more:
            return b"".join(parts), None
        parts.append(more)
        total += len(more)
    return None, ImageInfo(TOO_LARGE, _bytes_message(f"more than {max_bytes:,}", max_bytes))


def read_file(path: Path, max_bytes: int | None = None) -> tuple[bytes | None, ImageInfo | None]:
    """(bytes, None), or (None, ImageInfo saying why not: missing, unreadable, too large), for any
    caller that reads a dataset's picture: a regular file, size checked before reading, never more
    than ``max_bytes`` (default: the ``max_image_bytes`` limit) read; OSError never escapes."""
    limit = limits.get(MAX_BYTES_LIMIT) if max_bytes is None else int(max_bytes)
    try:
        fh, st, failed = _open(Path(path), limit)
        if failed is not None:
            return None, failed
        with fh:
            return _read_whole(fh, st.st_size, limit)
    except OSError as exc:
        return None, ImageInfo(*_os_failure(exc))


def _bytes_message(size, limit: int) -> str:
    size = f"{size:,}" if isinstance(size, int) else size
    return (f"the file's {size} bytes are over the limit of {limit:,} (LL406 option max_bytes, "
            f"or {limits.LIMITS[MAX_BYTES_LIMIT].env})")


def _over_pixels(info: ImageInfo, max_pixels: int) -> bool:
    return info.status == OK and info.width * info.height > max_pixels


def _header_refusal(fh, max_pixels: int) -> ImageInfo | None:
    """A TOO_LARGE record when the header claims more pixels than the limit, read without loading
    the picture (PIL reads only the header at open); None to go on: junk is decode()'s to report."""
    from PIL import Image

    try:
        im = Image.open(fh)
    except Image.DecompressionBombError as exc:
        return ImageInfo(TOO_LARGE, f"refused by the pixel limit: {_why(exc)} (LL406 option max_pixels)")
    except Exception:  # PIL raises many kinds for junk
        return None
    width, height = im.size
    if width * height <= max_pixels:
        return None
    return ImageInfo(TOO_LARGE, _pixels_message(width, height, max_pixels), width=width, height=height,
                     mode=im.mode, format=im.format)
