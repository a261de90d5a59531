"""Review decisions (made in the HTML gallery) applied back to a COCO file: ``labellint apply``.

Format (version 1)::

    {"format": "labellint-decisions", "version": 1, "created": "...", "tool": {...}, "report": "...",
     "decisions": [{"path": "data/train.json", "fingerprint": "...", "code": "LL501",
                    "annotation_id": 17, "state": "0123456789abcdef",
                    "action": "relabel", "category_id": 3}, ...]}

``action`` is ``relabel`` (with ``category_id``), ``delete``, ``set_bbox`` (with ``bbox``
[x, y, w, h]), ``set_id`` (with ``new_id``, a positive integer: the fresh id LL010 and LL014
propose) or ``keep`` (no change; ``--baseline`` records the finding as accepted).
``state`` is the annotation's state hash when the report was made (fix.state).

Safety: a decision is applied only to the annotation it was made about, in the state the reviewer
saw. An annotation whose state is neither that one nor the decided result was changed by someone
since the report: apply refuses (nothing is written) unless ``--force``. An annotation already in
the decided state is skipped, so applying the same decisions twice changes nothing.

Decisions are about one entry: its id and its state. Where an id is repeated (LL010), the state
tells the entries apart. ``set_id`` is refused when the new id is taken by then (by another
annotation, or by another decision of the same file): nothing refers to annotation ids, but two
annotations must not share one.

The file comes from anywhere: it is read whole only below ``max_decisions_bytes``, and each
decision is checked field by field before anything is planned (ids within 64 bits, a state of 16
hex digits, boxes whose corners and area are finite, no field it does not define). A malformed
decision is a one-line error naming it and its field; decisions about one annotation that
contradict each other are a conflict that ``--force`` does not override.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from labellint import limits
from labellint.coco import MISSING_ID
from labellint.errors import InputError
from labellint.findings import Edit, delete, set_field
from labellint.fix import jsonedit, state, values
from labellint.fsutil import open_regular

FORMAT = "labellint-decisions"
VERSION = 1
ACTIONS = ("relabel", "delete", "set_bbox", "set_id", "keep")


@dataclass
class Decision:
    index: int  # position in the decisions list, for messages
    path: str | None
    fingerprint: str | None
    code: str | None
    annotation_id: int | None
    state: str | None
    action: str
    category_id: int | None = None
    bbox: list[float] | None = None
    new_id: int | None = None
    where: str | None = None  # how messages name it, when not "decisions[index]" (a Label Studio task)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_id(v) -> bool:
    """An id a COCO file can hold (64 bits; the loader's mark for a missing id is not one)."""
    return _is_int(v) and MISSING_ID < v < 2**63


_COMMON = ("path", "fingerprint", "code", "annotation_id", "state", "action")
_OWN = {"relabel": ("category_id",), "set_bbox": ("bbox",), "set_id": ("new_id",), "delete": (), "keep": ()}
_STATE = re.compile(r"[0-9a-f]{16}")


def _shown(v) -> str:
    """A value from the file as a message quotes it: short, whatever it holds."""
    try:
        text = json.dumps(v, ensure_ascii=True, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        text = type(v).__name__
    most = limits.get("max_quoted_chars")
    return text if len(text) <= most else text[:most] + "..."


def _read_capped(path: Path, shown: str) -> bytes:
    most = limits.get("max_decisions_bytes")
    try:
        with open(open_regular(path, shown), "rb") as fh:  # a regular file only: a FIFO would block
            raw = fh.read(most + 1)
    except FileNotFoundError:
        raise InputError("decisions file not found", shown) from None
    except IsADirectoryError:
        raise InputError("the decisions file is a directory", shown) from None
    except OSError as exc:
        raise InputError(f"cannot read the decisions file: {exc.strerror}", shown) from None
    if len(raw) > most:
        raise InputError(f"the decisions file is larger than {most:,} bytes (LABELLINT_MAX_DECISIONS_BYTES)", shown)
    return raw


def read(path: Path) -> tuple[list[Decision], dict]:
    """The decisions of a file, validated; a bad file is one InputError with its position."""
    return parse(load(path), str(path))


def load(path: Path):
    """The JSON document of a decisions file (or of a Label Studio export: fix.labelstudio),
    read whole below ``max_decisions_bytes``; a file that is not JSON is one InputError."""
    shown = str(path)
    raw = _read_capped(path, shown)
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise InputError("decisions file is not UTF-8 text", shown) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"decisions file is not valid JSON: {exc.msg}", shown, exc.lineno, exc.colno) from None
    except RecursionError:
        raise InputError("decisions file is not valid JSON: nested too deeply", shown) from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise InputError(f"decisions file is not valid JSON: {str(exc).splitlines()[0]}", shown) from None
    return doc


def parse(doc, shown: str) -> tuple[list[Decision], dict]:
    """The decisions of a loaded decisions file, validated field by field."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputError(f"not a labellint decisions file (\"format\": \"{FORMAT}\" missing) nor a Label Studio "
                         "export (a JSON list of tasks)", shown)
    if doc.get("version") != VERSION:
        raise InputError(f"decisions version {_shown(doc.get('version'))} is not supported "
                         f"(this labellint reads {VERSION})", shown)
    items = doc.get("decisions")
    if not isinstance(items, list):
        raise InputError("'decisions' must be a list", shown)
    return [_decision(i, d, shown) for i, d in enumerate(items)], doc


def _decision(i: int, d, shown: str) -> Decision:
    """One decision, checked field by field (InputError naming the decision and the field)."""
    where = f"decisions[{i}]"
    if not isinstance(d, dict):
        raise InputError(f"{where} is not an object", shown)
    action = d.get("action")
    if not isinstance(action, str) or action not in ACTIONS:
        raise InputError(f"{where}: action {_shown(action) if not isinstance(action, str) else repr(action[:40])} "
                         f"is not one of {', '.join(ACTIONS)}", shown)
    for key in d:
        if key not in _COMMON and key not in _OWN[action]:
            what = "is not a field of a decision" if not any(key in own for own in _OWN.values()) else \
                f"does not go with action {action}"
            name = _shown(key)  # JSON-escaped: no control character reaches the terminal
            raise InputError(f"{where}.{name[1:-1] if name.endswith(chr(34)) else name}: {what}", shown)
    for key in ("path", "fingerprint", "code"):
        if d.get(key) is not None and not isinstance(d[key], str):
            raise InputError(f"{where}.{key}: must be a string, not {_shown(d[key])}", shown)
    ann = d.get("annotation_id")
    if action != "keep" and not _is_int(ann):
        raise InputError(f"{where}: {action} needs an integer annotation_id", shown)
    if ann is not None and not _is_id(ann):
        raise InputError(f"{where}.annotation_id: {_shown(ann)} is not an id a COCO file can hold "
                         "(an integer of 64 bits)", shown)
    st = d.get("state")
    if st is not None and not (isinstance(st, str) and _STATE.fullmatch(st)):
        raise InputError(f"{where}.state: must be a string of 16 hex digits (fix.state), not {_shown(st)}", shown)
    cat, box, new_id = d.get("category_id"), d.get("bbox"), d.get("new_id")
    if action == "relabel" and not _is_int(cat):
        raise InputError(f"{where}: relabel needs an integer category_id", shown)
    if action == "relabel" and not _is_id(cat):
        raise InputError(f"{where}.category_id: {_shown(cat)} is not an id a COCO file can hold "
                         "(an integer of 64 bits)", shown)
    if action == "set_bbox" and not _sane_box(box):
        raise InputError(f"{where}.bbox: set_bbox needs bbox [x, y, width, height] of finite numbers, "
                         f"width and height not negative, its corners and area finite; not {_shown(box)}", shown)
    if action == "set_id" and not (_is_int(new_id) and 0 < new_id < 2**63):
        raise InputError(f"{where}: set_id needs a positive integer new_id (below 2**63)", shown)
    return Decision(i, d.get("path"), d.get("fingerprint"), d.get("code"), ann, st, action,
                    cat if action == "relabel" else None,
                    [float(v) for v in box] if action == "set_bbox" else None,
                    new_id if action == "set_id" else None)


def _sane_box(box) -> bool:
    if not (isinstance(box, list) and len(box) == 4
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)):
        return False
    try:
        x, y, w, h = (float(v) for v in box)
    except OverflowError:  # an integer beyond any float
        return False
    return (all(math.isfinite(v) for v in (x, y, w, h, x + w, y + h, w * h)) and w >= 0 and h >= 0)


def for_file(decisions: list[Decision], relpath: str) -> tuple[list[Decision], str | None]:
    """The decisions about ``relpath`` and a note when they name another path. Decisions that all
    name one file apply to the dataset given (it may have been renamed or checked out elsewhere)."""
    paths = {d.path for d in decisions if d.path}
    if len(paths) <= 1:
        other = next(iter(paths), None)
        note = None if other in (None, relpath) else f"the decisions were made on {_shown(other)}; applying them to {relpath}"
        return decisions, note
    mine = [d for d in decisions if d.path == relpath]
    if not mine:
        named = ", ".join(_shown(p) for p in sorted(paths)[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
        raise InputError(f"no decisions for {relpath} (they name {named})", relpath)
    return mine, None


@dataclass
class Plan:
    edits: list[Edit] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)  # what will change, one line each
    already: list[str] = field(default_factory=list)  # decisions already in effect
    conflicts: list[str] = field(default_factory=list)  # annotations changed since the report
    kept: list[Decision] = field(default_factory=list)


def _decided(entry: dict, group: list[Decision]) -> dict | None:
    """The entry after the group's decisions (None: deleted)."""
    out = dict(entry)  # decisions set top-level fields only; a deep copy would recurse as deep as the entry nests
    for d in group:
        if d.action == "delete":
            return None
        if d.action == "relabel":
            out["category_id"] = d.category_id
        elif d.action == "set_id":
            out["id"] = d.new_id
        elif d.action == "set_bbox":
            old = out.get("bbox")
            if (isinstance(old, list) and len(old) == 4 and all(isinstance(v, (int, float)) for v in old)
                    and values.area_is_box(out.get("area"), old[2], old[3])):
                out["area"] = d.bbox[2] * d.bbox[3]
            out["bbox"] = d.bbox
    return out


def _new_id(group: list[Decision]) -> int | None:
    """The id the group's decisions give the annotation (None: they leave it)."""
    ids = [d.new_id for d in group if d.action == "set_id"]
    return ids[-1] if ids else None


def _already(entry: dict, group: list[Decision], seen: str | None, ann_id: int) -> bool:
    """Whether the entry is already as the group decides (applied before). An entry found under
    the new id of a renumbering must also be the reviewed one under its old id, so that another
    annotation that has the new id since is not taken for it."""
    after = _decided(entry, group)
    if after is None or state.state_of(after) != state.state_of(entry):
        return False
    new_id = _new_id(group)
    if new_id is None or entry.get("id") != new_id or seen is None:
        return True
    if any(d.action != "set_id" for d in group):
        return True  # other changes too: the reviewed state cannot be rebuilt from this one
    return state.state_of({**entry, "id": ann_id}) == seen


def _which(group: list[Decision]) -> str:
    if group[0].where:
        return ", ".join(dict.fromkeys(d.where for d in group))
    return "decisions[" + ", ".join(str(d.index) for d in group[:5]) + (", ..." if len(group) > 5 else "") + "]"


def _contradiction(group: list[Decision]) -> str | None:
    """Why the decisions of one group cannot all be applied (None: they agree). Deleting an
    annotation and changing it, or setting one field to two values, is not for ``--force``."""
    if any(d.action == "delete" for d in group) and any(d.action != "delete" for d in group):
        return "deleting the annotation and changing it"
    for action, value in (("relabel", lambda d: d.category_id), ("set_bbox", lambda d: d.bbox),
                          ("set_id", lambda d: d.new_id)):
        values = {json.dumps(value(d)) for d in group if d.action == action}
        if len(values) > 1:
            return f"{action} to {len(values)} different values"
    return None


def plan(ds, decisions: list[Decision], force: bool = False) -> Plan:
    ds.check_editable()  # a key twice: an edit could land in the copy readers ignore
    out = Plan()
    # one group per reviewed entry: its id and the state it was reviewed in (a repeated id, LL010,
    # names several entries; their states tell them apart)
    groups: dict[tuple, list[Decision]] = defaultdict(list)
    for d in decisions:
        if d.action == "keep":
            out.kept.append(d)
        else:
            groups[(d.annotation_id, d.state)].append(d)
    rows_of: dict[int, list[int]] = defaultdict(list)  # annotation id -> its rows: one pass, not one per group
    for r, i in enumerate(ds.annotations.id.tolist()):
        if i != MISSING_ID:
            rows_of[i].append(r)
    category_ids = {int(c) for c in ds.categories.id.tolist()}
    names = {int(c): ds.category_name(r) for r, c in enumerate(ds.categories.id.tolist())}
    claimed: dict[int, str] = {}  # new id -> the annotation a decision gives it to
    edited: set[int] = set()  # rows already changed by a decision
    for (ann_id, seen), group in groups.items():
        rows = list(rows_of.get(ann_id, ()))
        new_id = _new_id(group)
        label = f"annotation {ann_id}"
        which = _which(group)

        def conflict(message: str) -> None:
            out.conflicts.append(f"{which}: {message}")

        contradiction = _contradiction(group)
        if contradiction is not None:
            conflict(f"{label}: the decisions contradict each other ({contradiction}); --force does not choose")
            continue
        unknown = [d.category_id for d in group if d.action == "relabel" and d.category_id not in category_ids]
        if unknown:
            conflict(f"{label}: category id {unknown[0]} is not in the file")
            continue
        renamed = list(rows_of.get(new_id, ())) if new_id is not None else []
        entries = {r: values.entry(ds, "annotations", r) for r in rows + renamed}
        entries = {r: e for r, e in entries.items() if e is not None}  # an entry that is not an object: not one
        rows, renamed = [r for r in rows if r in entries], [r for r in renamed if r in entries]
        states = {r: state.state_of(e) for r, e in entries.items()}
        row = next((r for r in rows if seen is not None and states[r] == seen and r not in edited), None)
        if row is None:
            # already in the decided state (applied before): nothing to do, no conflict
            if any(_already(entries[r], group, seen, ann_id) for r in rows + renamed):
                out.already.append(f"{label}: already as decided")
                continue
            if not rows:
                if group[-1].action == "delete":
                    out.already.append(f"{label} is already deleted")
                else:
                    conflict(f"{label} is no longer in the file")
                continue
            if len(rows) > 1:
                conflict(f"{label}: the id appears {len(rows)} times and none is in the reviewed state")
                continue
            if not force:
                conflict(f"{label} changed since the report was made" if seen else
                         f"{label}: the decision has no state to check against")
                continue
            row = rows[0]
            if row in edited:
                conflict(f"{label}: two decisions about different entries both come to /annotations/{row}")
                continue
        entry = entries[row]
        after = _decided(entry, group)
        edited.add(row)
        if after is None:
            out.edits.append(delete("annotations", row))
            out.changes.append(f"deleted {label} ({_describe(entry, names)})")
            continue
        if after.get("id") != entry.get("id"):
            taken = [r for r in renamed if r != row]
            if taken:
                conflict(f"{label}: the new id {new_id} is taken by /annotations/{taken[0]} since the "
                         "report was made; re-run the report for a fresh one")
                continue
            if new_id in claimed:
                conflict(f"{label}: the new id {new_id} is also given to {claimed[new_id]} by another decision")
                continue
            claimed[new_id] = label
            out.edits.append(set_field("annotations", row, "id", new_id))
            twice = f" (one of {len(rows)} annotations with that id, /annotations/{row})" if len(rows) > 1 else ""
            out.changes.append(f"renumbered {label}{twice}: id {ann_id} -> {new_id}")
        if after.get("category_id") != entry.get("category_id"):
            out.edits.append(set_field("annotations", row, "category_id", after["category_id"]))
            out.changes.append(f"relabelled {label}: {_name(entry.get('category_id'), names)} -> "
                               f"{_name(after['category_id'], names)}")
        if after.get("bbox") != entry.get("bbox"):
            out.edits.append(set_field("annotations", row, "bbox", after["bbox"]))
            out.changes.append(f"moved {label}: bbox {_box(entry.get('bbox'))} -> {_box(after['bbox'])}")
        if after.get("area") != entry.get("area"):
            out.edits.append(set_field("annotations", row, "area", after["area"]))
    return out


def _name(cat, names) -> str:
    return f"'{names[cat]}' ({cat})" if _is_int(cat) and cat in names else _shown(cat)


def _box(b) -> str:
    if isinstance(b, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in b):
        return "[" + ", ".join(f"{float(v):g}" if isinstance(v, float) or abs(v) < 2**53 else str(v) for v in b) + "]"
    return _shown(b)


def _describe(entry: dict, names) -> str:
    return f"{_name(entry.get('category_id'), names)} at {_box(entry.get('bbox'))}"


def apply(ds, p: Plan, source=None) -> bytes:
    """The file's bytes with the plan's edits, the byte-order mark of ``source`` (the file read)
    kept."""
    from labellint.fix.runner import leading_bom

    return leading_bom(source) + (jsonedit.apply_edits(ds, p.edits) if p.edits else bytes(ds.data))
