"""Structure-aware mutations: each takes a random generator and a case tree (changed in place) and
returns a one-line description of what it did, or None when it does not apply to this tree.

Generic mutations work on any JSON tree (a value replaced by a hostile one, a type swapped, a key
deleted, repeated or renamed, a list grown, cut or flooded, nesting made deep); COCO mutations know
the format (boxes, polygons, RLE, image sizes, ids, file names, categories, whole sections);
byte mutations break the written file (cut short, a BOM, UTF-16, invalid UTF-8, a NUL, line ends).
"""

from __future__ import annotations

import copy
import math
import random

from .corpus import ESCAPES, ODD_IMAGES
from .values import BigInt, Deep, HugeStr, Pairs, Raw, extreme_numbers, hostile_strings, odd_containers

SECTIONS = ("images", "annotations", "categories")


def short(v, n: int = 70) -> str:
    text = repr(v)
    return text if len(text) <= n else text[: n - 12] + f"...({len(text)})"


# -- finding places in a tree ---------------------------------------------------------------------

def _children(node):
    if isinstance(node, dict):
        return list(node.items())
    if isinstance(node, Pairs):
        return list(enumerate(v for _, v in node.items))
    if isinstance(node, list):
        return list(enumerate(node))
    return []


def places(tree, rng: random.Random, limit: int = 400):
    """(parent, key, path) of up to ``limit`` places in the tree; long lists are sampled."""
    out = []
    stack = [(tree, "$")]
    while stack and len(out) < limit:
        node, path = stack.pop()
        kids = _children(node)
        if len(kids) > 12:
            kids = rng.sample(kids, 12)
        for key, value in kids:
            sub = f"{path}[{key!r}]" if not isinstance(key, str) else f"{path}.{key}"
            out.append((node, key, sub))
            if isinstance(value, (dict, list, Pairs)):
                stack.append((value, sub))
    return out


def _get(parent, key):
    if isinstance(parent, Pairs):
        return parent.items[key][1]
    return parent[key]


def _set(parent, key, value):
    if isinstance(parent, Pairs):
        parent.items[key] = (parent.items[key][0], value)
    else:
        parent[key] = value


def hostile_value(rng: random.Random):
    kind = rng.random()
    if kind < 0.45:
        return rng.choice(extreme_numbers())
    if kind < 0.85:
        return rng.choice(hostile_strings())
    return copy.deepcopy(rng.choice(odd_containers()))


def swapped(rng: random.Random, v):
    """The value as another JSON type, the way a hand edit or another tool would write it."""
    if isinstance(v, bool):
        return rng.choice([int(v), str(v).lower(), None])
    if isinstance(v, (int, float)):
        return rng.choice([str(v) if not isinstance(v, float) or math.isfinite(v) else "nan", [v], {"value": v},
                           bool(v) if not (isinstance(v, float) and math.isnan(v)) else True, None,
                           float(v) if isinstance(v, int) and abs(v) < 2**53 else 1.5])
    if isinstance(v, str):
        return rng.choice([len(v), [v], {"name": v}, None, True, 1.5])
    if isinstance(v, list):
        return rng.choice([{str(i): x for i, x in enumerate(v[:50])}, v[0] if v else None, len(v), "[" + "," * 3 + "]"])
    if isinstance(v, (dict, Pairs)):
        items = v.items if isinstance(v, Pairs) else list(v.items())
        return rng.choice([[x for _, x in items], [[k, x] for k, x in items], "{}", None, 0])
    return rng.choice([0, "", [], {}])


# -- generic mutations ----------------------------------------------------------------------------

def m_replace(rng, tree):
    spots = places(tree, rng)
    if not spots:
        return None
    parent, key, path = rng.choice(spots)
    new = hostile_value(rng)
    _set(parent, key, new)
    return f"{path} = {short(new)}"


def m_swap_type(rng, tree):
    spots = places(tree, rng)
    if not spots:
        return None
    parent, key, path = rng.choice(spots)
    new = swapped(rng, _get(parent, key))
    _set(parent, key, new)
    return f"{path} type swapped to {short(new)}"


def _dicts(tree, rng):
    return [(p, k, path) for p, k, path in places(tree, rng) if isinstance(_get(p, k), dict)] + (
        [(None, None, "$")] if isinstance(tree, dict) else [])


def _container(rng, tree, spots, nonempty=False):
    """One of `spots` (parent, key, path) chosen at random and the container it points at
    (the tree itself for the root), or None when there is none (or none non-empty)."""
    found = [(s, _get(s[0], s[1]) if s[0] is not None else tree) for s in spots]
    found = [f for f in found if f[1] or not nonempty]
    if not found:
        return None
    (_parent, _key, path), c = rng.choice(found)
    return path, c


def m_delete_key(rng, tree):
    picked = _container(rng, tree, _dicts(tree, rng), nonempty=True)
    if picked is None:
        return None
    path, d = picked
    k = rng.choice(list(d))
    del d[k]
    return f"{path}: key {k!r} deleted"


def m_duplicate_key(rng, tree):
    spots = [s for s in _dicts(tree, rng) if s[0] is not None and _get(s[0], s[1])]
    if not spots:
        return None
    parent, key, path = rng.choice(spots)
    d = _get(parent, key)
    k = rng.choice(list(d))
    second = d[k] if rng.random() < 0.3 else hostile_value(rng)
    items = list(d.items())
    at = rng.randint(0, len(items))
    items.insert(at, (k, second))
    _set(parent, key, Pairs(items))
    return f"{path}: key {k!r} repeated with {short(second)}"


def m_rename_key(rng, tree):
    picked = _container(rng, tree, _dicts(tree, rng), nonempty=True)
    if picked is None:
        return None
    path, d = picked
    k = rng.choice(list(d))
    new = rng.choice([k.upper(), k + " ", " " + k, k.replace("i", "\u0456"), k + "\u200b", k[:-1], k + "s", ""])
    if new in d:
        return None
    items = [(new if x == k else x, v) for x, v in d.items()]
    d.clear()
    d.update(items)
    return f"{path}: key {k!r} renamed {new!r}"


def _lists(tree, rng):
    out = [(p, k, path) for p, k, path in places(tree, rng) if isinstance(_get(p, k), list)]
    if isinstance(tree, list):
        out.append((None, None, "$"))
    return out


def m_list(rng, tree):
    picked = _container(rng, tree, _lists(tree, rng))
    if picked is None:
        return None
    path, lst = picked
    op = rng.choice(["dup", "drop", "reverse", "cut", "insert", "empty"])
    if op == "dup" and lst:
        i = rng.randrange(len(lst))
        lst.insert(rng.randint(0, len(lst)), copy.deepcopy(lst[i]))
        return f"{path}: item {i} duplicated"
    if op == "drop" and lst:
        i = rng.randrange(len(lst))
        del lst[i]
        return f"{path}: item {i} removed"
    if op == "reverse":
        lst.reverse()
        return f"{path}: reversed"
    if op == "cut" and lst:
        n = rng.randrange(len(lst))
        del lst[n:]
        return f"{path}: cut to {n} items"
    if op == "empty":
        lst.clear()
        return f"{path}: emptied"
    v = hostile_value(rng)
    lst.insert(rng.randint(0, len(lst)), v)
    return f"{path}: {short(v)} inserted"


def m_flood(rng, tree):
    """Thousands of copies of one item: identical boxes, repeated ids, a wide flat list."""
    picked = _container(rng, tree, _lists(tree, rng), nonempty=True)
    if picked is None:
        return None
    path, lst = picked
    item = rng.choice(lst)
    n = rng.choice([1000, 3000, 10_000, 30_000])
    renumber = isinstance(item, dict) and "id" in item and rng.random() < 0.5
    for i in range(n):
        c = copy.deepcopy(item) if isinstance(item, (dict, list)) else item
        if renumber:
            c["id"] = 1_000_000 + i
        lst.append(c)
    return f"{path}: {n} copies of {short(item, 50)}" + (" (fresh ids)" if renumber else "")


def m_deep(rng, tree):
    spots = places(tree, rng)
    if not spots:
        return None
    parent, key, path = rng.choice(spots)
    new = Deep(rng.choice([64, 1000, 5000, 50_000, 200_000]), rng.choice("[{"))
    _set(parent, key, new)
    return f"{path} = {short(new)}"


GENERIC = [(m_replace, 6), (m_swap_type, 4), (m_delete_key, 3), (m_duplicate_key, 2), (m_rename_key, 1),
           (m_list, 3), (m_flood, 1), (m_deep, 1)]


# -- COCO mutations -------------------------------------------------------------------------------

def _entries(tree, section):
    if not isinstance(tree, dict):
        return []
    items = tree.get(section)
    return [(i, x) for i, x in enumerate(items) if isinstance(x, dict)] if isinstance(items, list) else []


def _pick(rng, tree, section):
    entries = _entries(tree, section)
    return rng.choice(entries) if entries else (None, None)


def bad_bbox(rng):
    n = rng.choice([math.nan, math.inf, -math.inf, 1e308, -1e308, 2**70, 1e-320, 0, -5, BigInt(5000), Raw("1e999")])
    return rng.choice([[], [1], [1, 2, 3], [1, 2, 3, 4, 5], [n, 2, 3, 4], [1, 2, n, 4], [n] * 4, [10, 10, -5, -5],
                       [0, 0, 0, 0], [1e308, 1e308, 1e308, 1e308], ["1", "2", "3", "4"], [None] * 4, [True] * 4,
                       [[1, 2, 3, 4]], "1,2,3,4", {"x": 1}, 5, [1.5e-300, 2.5e-300, 1e-300, 1e-300],
                       [2**31, 2**31, 2**31, 2**31], [0] * 100_000, [-1e308, -1e308, 1e308, 1e308]])


def bad_polygon(rng):
    n = rng.choice([math.nan, math.inf, 1e308, -1e308, 2**70, BigInt(5000)])
    big = rng.choice([2_000, 100_000, 400_000])
    return rng.choice([[[]], [[1, 2]], [[1, 2, 3]], [[1, 2, 3, 4, 5, 6, 7]], [[n, 1, 2, 3, 4, 5]], [[n] * 8],
                       [[5, 5, 5, 5, 5, 5, 5, 5]], [[0, 0, 10, 10, 10, 0, 0, 10]], [[1e308, 0, 0, 1e308, -1e308, 0]],
                       [[i % 97 for i in range(big)]], [[0, 0, 1, 0, 1, 1]] * rng.choice([1000, 20_000]),
                       [[[1, 2, 3, 4, 5, 6]]], [["a", "b", "c", "d", "e", "f"]], [None], [[None] * 6], [1, 2, 3, 4, 5, 6],
                       [[2**31, 0, 2**32, 0, 2**32, 2**31]], [[-1, -1, -5, -1, -5, -5]], "polygon", [{}], [[True] * 6]])


def bad_rle(rng):
    h, w = rng.choice([(10, 10), (0, 0), (-1, 5), (100_000, 100_000), (2**31, 2**31), (2**40, 1), (1, 2**33),
                       (3, 3), (1e308, 1e308), (math.nan, 4), ("10", "10"), (None, None)])
    counts = rng.choice([[2**32 + 5, 1], [2**40], [-5, 105], [1, 2, 3], [100], [0] * 1000, [2**33, 2**33, 2**33],
                         [1.5, 98.5], [math.nan], [], "", "!!!!", "PPYo0", "0" * 10_000, "\x00", HugeStr(1_000_000, "P"),
                         "a" * 50 + "\u00ff", [None], [[1, 2]], None, {"a": 1}, BigInt(5000), [2**63], [-(2**63)],
                         [10 * 10], "`" * 200, rle_like(rng)])
    seg = {"size": [h, w], "counts": counts}
    odd = rng.random()
    if odd < 0.1:
        seg = {"counts": counts}
    elif odd < 0.2:
        seg = {"size": [h], "counts": counts}
    elif odd < 0.3:
        seg = {"size": [h, w, 3], "counts": counts}
    elif odd < 0.35:
        seg = [seg]
    return seg


def rle_like(rng):
    return "".join(chr(48 + rng.randrange(64)) for _ in range(rng.randint(1, 40)))


def m_bbox(rng, tree):
    i, ann = _pick(rng, tree, "annotations")
    if ann is None:
        return None
    ann["bbox"] = bad_bbox(rng)
    return f"annotations[{i}].bbox = {short(ann['bbox'])}"


def m_polygon(rng, tree):
    i, ann = _pick(rng, tree, "annotations")
    if ann is None:
        return None
    ann["segmentation"] = bad_polygon(rng)
    if rng.random() < 0.3:
        ann["iscrowd"] = 1
    return f"annotations[{i}].segmentation = {short(ann['segmentation'])} (iscrowd {ann.get('iscrowd')!r})"


def m_rle(rng, tree):
    i, ann = _pick(rng, tree, "annotations")
    if ann is None:
        return None
    ann["segmentation"] = bad_rle(rng)
    ann["iscrowd"] = rng.choice([1, 1, 1, 0])
    return f"annotations[{i}].segmentation = {short(ann['segmentation'])} (iscrowd {ann['iscrowd']})"


def m_number_field(rng, tree):
    section, fields = rng.choice([("annotations", ["area", "iscrowd", "id", "image_id", "category_id"]),
                                  ("images", ["width", "height", "id"]), ("categories", ["id"])])
    i, entry = _pick(rng, tree, section)
    if entry is None:
        return None
    f = rng.choice(fields)
    new = rng.choice(extreme_numbers() + [-1, 0, 1.0, 1.5, "1", 2, 10**9, True])
    entry[f] = new
    return f"{section}[{i}].{f} = {short(new)}"


def m_same_id(rng, tree):
    """An id repeated, or a reference to an id nothing has."""
    section = rng.choice(SECTIONS)
    entries = _entries(tree, section)
    if len(entries) < 1:
        return None
    (i, a), (j, b) = rng.choice(entries), rng.choice(entries)
    if rng.random() < 0.5 and section == "annotations":
        f = rng.choice(["image_id", "category_id"])
        a[f] = rng.choice([999_999, -1, 0, None, 2**64, "1"])
        return f"annotations[{i}].{f} = {short(a[f])} (no such entry)"
    a["id"] = b.get("id")
    return f"{section}[{i}].id = {section}[{j}].id ({short(b.get('id'))})"


def m_file_name(rng, tree, images_used=False):
    i, im = _pick(rng, tree, "images")
    if im is None:
        return None
    pool = list(ESCAPES) + list(ODD_IMAGES) if images_used else []
    pool += [s for s in hostile_strings() if isinstance(s, str) and len(s) < 10_000]
    new = rng.choice(pool)
    im["file_name"] = new
    return f"images[{i}].file_name = {short(new)}"


def m_category(rng, tree):
    i, cat = _pick(rng, tree, "categories")
    if cat is None:
        return None
    op = rng.random()
    if op < 0.5:
        f = rng.choice(["name", "supercategory"])
        cat[f] = rng.choice(hostile_strings())
        return f"categories[{i}].{f} = {short(cat[f])}"
    n = rng.choice([500, 3000, 10_000])
    base = cat.get("name") if isinstance(cat.get("name"), str) else "cat"
    tree["categories"].extend({"id": 10_000_000 + k, "name": f"{base[:50]}{k}", "supercategory": "x"} for k in range(n))
    return f"categories: {n} similar names added ({base[:20]!r}0, {base[:20]!r}1, ...)"


def m_many_images(rng, tree):
    if not isinstance(tree, dict) or not isinstance(tree.get("images"), list):
        return None
    n = rng.choice([5_000, 30_000])
    same = rng.random() < 0.5
    tree["images"].extend({"id": 20_000_000 + k, "file_name": "same.jpg" if same else f"f{k}.jpg", "width": 640,
                           "height": 480} for k in range(n))
    return f"images: {n} images added without annotations" + (" (one file name)" if same else "")


def m_section(rng, tree):
    """A whole section (or the whole document) of the wrong shape."""
    if not isinstance(tree, dict):
        return None
    op = rng.random()
    if op < 0.5:
        s = rng.choice(SECTIONS + ("info", "licenses"))
        new = rng.choice([None, {}, "x", 5, [[]], [1, 2], {"0": {}}, Deep(1000), HugeStr(100_000), [None] * 100])
        tree[s] = copy.deepcopy(new)
        return f"{s} = {short(new)}"
    if op < 0.7:
        s = rng.choice(SECTIONS)
        tree.pop(s, None)
        return f"{s} deleted"
    if op < 0.85:
        k = rng.choice(["__proto__", "constructor", "Images", "annotations ", "", "\x00", HugeStr(100_000).value()])
        tree[k] = hostile_value(rng)
        return f"top-level key {short(k)} added"
    tree["info"] = {"description": HugeStr(rng.choice([1000, 1_000_000])).value(), "year": rng.choice(extreme_numbers())}
    return "info: huge description"


def m_whole(rng, tree):
    """Returns a replacement document (the caller swaps it in)."""
    return rng.choice([[], [tree], "x", 5, None, True, Deep(10_000), Deep(10_000, "{"), [{}] * 3, {}])


COCO = [(m_bbox, 5), (m_polygon, 4), (m_rle, 4), (m_number_field, 5), (m_same_id, 3), (m_file_name, 3),
        (m_category, 2), (m_many_images, 1), (m_section, 2)]


# -- predictions, configuration and decisions ------------------------------------------------------

def m_prediction(rng, tree):
    if not isinstance(tree, list) or not tree:
        return None
    i = rng.randrange(len(tree))
    p = tree[i]
    if not isinstance(p, dict):
        return None
    f = rng.choice(["score", "score", "bbox", "image_id", "category_id", "segmentation"])
    if f == "score":
        p[f] = rng.choice([math.nan, math.inf, -math.inf, -1, 2, 1e308, "0.5", None, True, 0, BigInt(5000)])
    elif f == "bbox":
        p[f] = bad_bbox(rng)
    elif f == "segmentation":
        p[f] = bad_rle(rng) if rng.random() < 0.7 else bad_polygon(rng)
    else:
        p[f] = rng.choice(extreme_numbers())
    return f"predictions[{i}].{f} = {short(p[f])}"


def m_config(rng, tree):
    if not isinstance(tree, dict):
        return None
    key = rng.choice(["select", "ignore", "extend-select", "per-file-ignores", "severity", "rules", "fail-on",
                      "unknown-key", "rules.option"])
    if key == "rules.option":
        rules = tree.setdefault("rules", {})
        if not isinstance(rules, dict):
            return None
        code = rng.choice(["LL103", "LL104", "LL105", "LL301", "LL303", "LL406", "LL999", "ll103", ""])
        opt = rng.choice(["min_area", "max_ratio", "tolerance", "min_count", "max_pixels", "zzz", ""])
        rules[code] = {opt: rng.choice(extreme_numbers() + hostile_strings()[:8])}
        return f"rules.{code}.{opt} = {short(rules[code][opt])}"
    new = rng.choice([hostile_value(rng), ["LL1", hostile_value(rng)], {"LL105": hostile_value(rng)},
                      [HugeStr(100_000).value()], ["LL" + "1" * 5000], {"*": [BigInt(5000)]}])
    tree[key] = new
    return f"config {key} = {short(new)}"


def m_decision(rng, tree):
    if not isinstance(tree, dict) or not isinstance(tree.get("decisions"), list) or not tree["decisions"]:
        return None
    i = rng.randrange(len(tree["decisions"]))
    d = tree["decisions"][i]
    if not isinstance(d, dict):
        return None
    f = rng.choice(["action", "annotation_id", "category_id", "bbox", "new_id", "state", "path", "fingerprint"])
    if f == "bbox":
        d[f] = bad_bbox(rng)
    elif f == "action":
        d[f] = rng.choice(["relabel", "delete", "set_bbox", "set_id", "keep", "", "DELETE", None, 5])
    else:
        d[f] = hostile_value(rng)
    return f"decisions[{i}].{f} = {short(d[f])}"


# -- bytes ----------------------------------------------------------------------------------------

def mutate_bytes(data: bytes, name: str, frac: float) -> bytes:
    """The written file broken in the way ``name`` says, at the relative position ``frac`` (so the
    same mutation still applies after the shrinker made the file smaller)."""
    at = int(len(data) * frac)
    if name == "truncate":
        return data[:at]
    if name == "bom":
        return b"\xef\xbb\xbf" + data
    if name == "double-bom":
        return b"\xef\xbb\xbf\xef\xbb\xbf" + data
    if name == "utf16":
        return data.decode("utf-8", "surrogatepass").encode("utf-16", "surrogatepass")
    if name == "utf32":
        return data.decode("utf-8", "surrogatepass").encode("utf-32", "surrogatepass")
    if name == "invalid-utf8":
        return data[:at] + b"\xff\xc0\x80" + data[at:]
    if name == "nul":
        return data[:at] + b"\x00" + data[at:]
    if name == "byte-flip":
        return data[:at] + bytes([data[at] ^ 0x55]) + data[at + 1:] if at < len(data) else data + b"\x55"
    if name == "crlf":
        return data.replace(b"\n", b"\r\n")
    if name == "cr":
        return data.replace(b"\n", b"\r")
    if name == "trailing-garbage":
        return data + b"\n}garbage"
    if name == "two-documents":
        return data + b"\n" + data
    if name == "empty":
        return b""
    if name == "whitespace":
        return b" \n\t\r\n  "
    if name == "line-separators":
        return data.replace(b",", "\u2028,".encode())
    if name == "chunk-repeat":
        return data[:at] + data[at:at + 64] + data[at:]
    raise ValueError(name)


BYTE_MUTATIONS = ["truncate", "truncate", "bom", "double-bom", "utf16", "utf32", "invalid-utf8", "nul", "byte-flip",
                  "crlf", "cr", "trailing-garbage", "two-documents", "empty", "whitespace", "line-separators",
                  "chunk-repeat"]


def weighted(rng: random.Random, table):
    total = sum(w for _, w in table)
    x = rng.uniform(0, total)
    for item, w in table:
        x -= w
        if x <= 0:
            return item
    return table[-1][0]
