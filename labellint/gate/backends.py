"""The two evaluation backends, hotcoco and pycocotools, as both the ground truth and the
evaluation use them."""

from __future__ import annotations

import contextlib
import io

from labellint.errors import LabellintError

BACKENDS = ("hotcoco", "pycocotools")


def _hotcoco():
    try:
        import hotcoco
    except ImportError:
        raise LabellintError("the hotcoco backend is not installed: pip install 'labellint-coco[eval]' "
                             "(or use --backend pycocotools)") from None
    return hotcoco


@contextlib.contextmanager
def _quiet():
    """Both libraries print progress and the summary table to stdout: keep our output ours."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def _printable(reason) -> str:
    """A library's reason, short and printable: it can quote a value of the file."""
    from labellint.report.safe import clean

    reason = clean(str(reason))
    return reason if len(reason) <= 200 else reason[:199] + "…"


def _refused(exc: BaseException) -> bool:
    """Whether a backend refused the input: any error, a Rust panic included (pyo3 raises it as a
    BaseException), but not an interrupt."""
    return not isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit))
