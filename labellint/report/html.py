"""The review gallery: one self-contained HTML page to look at findings and decide what to do.

``labellint check DATA.json --images DIR -f html -o review.html`` writes it; the reviewer opens it
in a browser (no server, no network), accepts, relabels, deletes or keeps each finding, and
downloads ``decisions.json`` for ``labellint apply``.

The page is a fixed template (``gallery/template.html``, ``gallery.css``, ``gallery.js``) plus one
JSON blob that holds everything from the run: findings in their ranked order, each file's classes,
and every picture as a ``data:`` URI, stored once and looked up by key (one image can be behind
hundreds of findings). Dataset strings come from strangers: the script inserts them only as text,
keys them only in Maps, and the blob escapes every ``<`` so that no string can close its
``<script>`` element. A Content-Security-Policy lets only the page's own script (by hash) run and
only ``data:`` images load. Dataset numbers are as hostile: every number in the blob is finite, a
coordinate is clipped to +-1e15 for drawing, and an id or value a decision would carry is left out
(the page cannot act on it) unless JavaScript holds it exactly.

Each picture is decoded once, whatever number of findings and crops it serves: the gallery
plans every card, thumbnail and crop first (:mod:`labellint.report.gallery_cards`), then reads
the images in threads (:mod:`labellint.report.gallery_pictures`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from importlib import resources
from pathlib import Path

from rich.console import Console

from labellint.report import gallery_pictures
from labellint.report.gallery_cards import JS_INT, MAX_COORD, Plan
from labellint.report.gallery_cards import accept_action, report_id  # noqa: F401  (the gallery's API, here too)

#: Findings that get pictures (the rest show their box on a blank canvas); keeps the file reasonable.
MAX_PICTURED = 5000


def report(result, options) -> str:
    return render(result, images=options.images, console=options.console)


def render(result, images: Path | None = None, console: Console | None = None) -> str:
    """The gallery page for a run's findings (``result.datasets`` must hold the loaded files)."""
    console = console or Console(stderr=True)
    plan = Plan(result, Path(images) if images is not None else None, MAX_PICTURED)
    doc = plan.build()
    gallery_pictures.draw(plan, console)
    doc["images"] = {key: rec.to_json() for key, rec in plan.images.items()}
    doc["crops"] = plan.crop_results
    return page(doc)


# -- the page ------------------------------------------------------------------------------------

def page(doc: dict) -> str:
    """Fill the template: style, script (allowed by its hash) and the data blob."""
    folder = resources.files("labellint.report") / "gallery"
    template = (folder / "template.html").read_text(encoding="utf-8")
    style = (folder / "gallery.css").read_text(encoding="utf-8")
    script = (folder / "gallery.js").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    csp = (f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'sha256-{digest}'; "
           "base-uri 'none'; form-action 'none'")
    parts = {"CSP": csp, "STYLE": style, "SCRIPT": script, "DATA": blob(doc)}
    # one pass: a value is never searched for placeholders again (the data may contain "{{SCRIPT}}")
    return re.sub(r"\{\{(CSP|STYLE|SCRIPT|DATA)\}\}", lambda m: parts[m.group(1)], template)


def blob(doc: dict) -> str:
    """JSON that is safe inside ``<script type="application/json">``: no ``<`` at all, so neither
    ``</script>`` nor ``<!--`` can appear; U+2028/2029 escaped for old parsers; every number one
    that JavaScript reads as written (see :func:`sane`)."""
    text = json.dumps(sane(doc), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def sane(value):
    """``value`` with every number the page can hold: a float that is not finite, or an integer
    JavaScript would round, becomes None; a float beyond +-MAX_COORD is clipped to it. The page
    reads None as "not known". Whatever a rule or a file put in the data, the page is written."""
    if isinstance(value, dict):
        return {k: sane(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [sane(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if -JS_INT <= value <= JS_INT else None
    if isinstance(value, float):
        return min(max(value, -MAX_COORD), MAX_COORD) if math.isfinite(value) else None
    try:  # numpy scalars and the like
        return sane(value.item())
    except (AttributeError, ValueError, TypeError):
        return None
