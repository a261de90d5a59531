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
"""

from __future__ import annotations

import copy
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from labellint.errors import InputError
from labellint.findings import Edit, delete, set_field
from labellint.fix import jsonedit, state, values

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


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def read(path: Path) -> tuple[list[Decision], dict]:
    """The decisions of a file, validated; a bad file is one InputError with its position."""
    shown = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError("decisions file not found", shown) from None
    except OSError as exc:
        raise InputError(f"cannot read the decisions file: {exc.strerror}", shown) from None
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise InputError("decisions file is not UTF-8 text", shown) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"decisions file is not valid JSON: {exc.msg}", shown, exc.lineno, exc.colno) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputError(f"not a labellint decisions file (\"format\": \"{FORMAT}\" missing)", shown)
    if doc.get("version") != VERSION:
        raise InputError(f"decisions version {doc.get('version')!r} is not supported (this labellint reads {VERSION})", shown)
    items = doc.get("decisions")
    if not isinstance(items, list):
        raise InputError("'decisions' must be a list", shown)
    out = []
    for i, d in enumerate(items):
        where = f"decisions[{i}]"
        if not isinstance(d, dict):
            raise InputError(f"{where} is not an object", shown)
        action = d.get("action")
        if action not in ACTIONS:
            raise InputError(f"{where}: action {action!r} is not one of {', '.join(ACTIONS)}", shown)
        ann = d.get("annotation_id")
        if action != "keep" and not _is_int(ann):
            raise InputError(f"{where}: {action} needs an integer annotation_id", shown)
        cat, box = d.get("category_id"), d.get("bbox")
        if action == "relabel" and not _is_int(cat):
            raise InputError(f"{where}: relabel needs an integer category_id", shown)
        if action == "set_bbox":
            if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                                 and math.isfinite(v) for v in box)
                    and box[2] >= 0 and box[3] >= 0):
                raise InputError(f"{where}: set_bbox needs bbox [x, y, width, height] of finite numbers, "
                                 "width and height not negative", shown)
        new_id = d.get("new_id")
        if action == "set_id" and not (_is_int(new_id) and 0 < new_id < 2**63):
            raise InputError(f"{where}: set_id needs a positive integer new_id", shown)
        st = d.get("state")
        if st is not None and not isinstance(st, str):
            raise InputError(f"{where}: state must be a string", shown)
        text = {k: d.get(k) if isinstance(d.get(k), str) else None for k in ("path", "fingerprint", "code")}
        out.append(Decision(i, text["path"], text["fingerprint"], text["code"], ann if _is_int(ann) else None, st,
                            action, cat if _is_int(cat) else None, [float(v) for v in box] if action == "set_bbox" else None,
                            new_id if action == "set_id" else None))
    return out, doc


def for_file(decisions: list[Decision], relpath: str) -> tuple[list[Decision], str | None]:
    """The decisions about ``relpath`` and a note when they name another path. Decisions that all
    name one file apply to the dataset given (it may have been renamed or checked out elsewhere)."""
    paths = {d.path for d in decisions if d.path}
    if len(paths) <= 1:
        other = next(iter(paths), None)
        note = None if other in (None, relpath) else f"the decisions were made on {other}; applying them to {relpath}"
        return decisions, note
    mine = [d for d in decisions if d.path == relpath]
    if not mine:
        raise InputError(f"no decisions for {relpath} (they name {', '.join(sorted(paths))})", relpath)
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
    out = copy.deepcopy(entry)
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


def plan(ds, decisions: list[Decision], force: bool = False) -> Plan:
    out = Plan()
    # one group per reviewed entry: its id and the state it was reviewed in (a repeated id, LL010,
    # names several entries; their states tell them apart)
    groups: dict[tuple, list[Decision]] = defaultdict(list)
    for d in decisions:
        if d.action == "keep":
            out.kept.append(d)
        else:
            groups[(d.annotation_id, d.state)].append(d)
    ids = ds.annotations.id
    category_ids = {int(c) for c in ds.categories.id.tolist()}
    names = {int(c): ds.category_name(r) for r, c in enumerate(ds.categories.id.tolist())}
    claimed: dict[int, str] = {}  # new id -> the annotation a decision gives it to
    edited: set[int] = set()  # rows already changed by a decision
    for (ann_id, seen), group in groups.items():
        rows = np.flatnonzero(ids == ann_id).tolist()
        new_id = _new_id(group)
        label = f"annotation {ann_id}"
        for d in group:
            if d.action == "relabel" and d.category_id not in category_ids:
                out.conflicts.append(f"{label}: category id {d.category_id} is not in the file")
        renamed = np.flatnonzero(ids == new_id).tolist() if new_id is not None else []
        entries = {r: values.entry(ds, "annotations", r) for r in rows + renamed}
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
                    out.conflicts.append(f"{label} is no longer in the file")
                continue
            if len(rows) > 1:
                out.conflicts.append(f"{label}: the id appears {len(rows)} times and none is in the reviewed state")
                continue
            if not force:
                out.conflicts.append(f"{label} changed since the report was made" if seen else
                                     f"{label}: the decision has no state to check against")
                continue
            row = rows[0]
            if row in edited:
                out.conflicts.append(f"{label}: two decisions about different entries both come to /annotations/{row}")
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
                out.conflicts.append(f"{label}: the new id {new_id} is taken by /annotations/{taken[0]} since the "
                                     "report was made; re-run the report for a fresh one")
                continue
            if new_id in claimed:
                out.conflicts.append(f"{label}: the new id {new_id} is also given to {claimed[new_id]} "
                                     "by another decision")
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
    return f"'{names[cat]}' ({cat})" if cat in names else repr(cat)


def _box(b) -> str:
    return "[" + ", ".join(f"{v:g}" for v in b) + "]" if isinstance(b, list) else repr(b)


def _describe(entry: dict, names) -> str:
    return f"{_name(entry.get('category_id'), names)} at {_box(entry.get('bbox'))}"


def apply(ds, p: Plan) -> bytes:
    return jsonedit.apply_edits(ds, p.edits) if p.edits else bytes(ds.data)
