"""Model-based label-issue scores (ObjectLab) shared by the LL6xx rules.

The method follows ObjectLab (Tkachenko et al., 2023) as cleanlab's ``object_detection`` module
implements it; this is a vectorised re-implementation, cleanlab is not needed at run time.

* similarity(label, prediction) = alpha * IoU + (1 - alpha) * exp(-distance of the centres * 0.1)
* **overlooked** (one score per confident prediction, confidence >= ``min_confidence``, that
  overlaps no label at all): the best similarity to a label of its class in the image; when the
  image has no label of that class, ``min_similarity * (1 - confidence)``.
* **badly located** (one score per label): the best similarity to a prediction of the label's
  class with confidence > ``min_confidence`` that overlaps it; 1 when there is none.
* **spurious** (LL604, not an ObjectLab score): a label that no confident prediction of any
  class overlaps, on an image where the model makes confident predictions.
* **swapped** (one score per label): ``max(min_similarity, 1 - best similarity)`` over the
  predictions of *other* classes with confidence > ``min_confidence``; 1 when there is none;
  ``min_similarity`` when another label of another class sits on the same box (IoU >= 0.95).

``min_similarity`` is the smallest non-zero similarity in the dataset. Lower scores are worse.

A box is an issue when its score is at most ``threshold_scale`` times the AP (IoU 0.50:0.95) of
the predictions for its class, measured against the labels themselves: a class the model
predicts well earns a higher threshold. ObjectLab's constants give ``0.25 * 0.8 = 0.2``.

These are cleanlab's scores, kept faithful (a test compares them). The rules ask for two more
conditions (``one_to_one=True``), so that no label answers for a box the model drew on another:

* a prediction belongs to the label it overlaps most (its *owner*; none when it overlaps no label,
  or two labels equally), and only its owner can be called badly located or swapped by it;
* a badly located label needs an owned prediction at IoU >= ``min_iou`` (one that barely touches
  it is another object), and a label that owns a same-class prediction, of any confidence, at
  IoU >= ``WELL_LOCATED`` is where the model puts it, never badly located.

LL602 adds one more way in (:func:`located` gives it the best IoU with those predictions): a
label whose confident own predictions all overlap it by less than its ``max_iou`` is reported
whatever its ObjectLab score. ObjectLab's threshold (0.2 x the class's AP) only lets through
similarities below about 0.15, i.e. IoU below about 0.1 for a good detector, and misses the boxes
shifted or resized by a third to a half of their size (IoU 0.2-0.6) that are the common case.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from labellint import limits
from labellint.errors import LabellintError

EUC_FACTOR = 0.1
LABEL_OVERLAP = 0.95
WELL_LOCATED = 0.9  # IoU with a prediction the label owns at which the model draws this very box
SIM_BLOCK = 1 << 20  # (label, prediction) pairs whose IoU is computed at once: bounds the temporaries


@dataclass
class Image:
    """Labels and predictions of one image, and their pairwise IoU and similarity."""

    row: int
    labels: np.ndarray  # annotation rows
    label_cls: np.ndarray  # category rows
    preds: np.ndarray  # prediction rows
    pred_cls: np.ndarray  # category rows
    iou: np.ndarray  # (labels, preds)
    sim: np.ndarray  # (labels, preds)
    label_xyxy: np.ndarray  # (labels, 4)
    clash: np.ndarray  # (labels,) bool: another label of another class lies on the same box


@dataclass
class Prepared:
    images: list
    min_similarity: float
    class_ap: np.ndarray  # by category row; nan where the class has no label
    pred_box: np.ndarray  # (n, 4) x, y, w, h of every prediction row
    pred_score: np.ndarray
    pred_cls: np.ndarray  # category row of every prediction, -1 where unknown
    memo: dict = field(default_factory=dict)  # what the rules derive from it once (confidence_bars)


def xyxy(b: np.ndarray) -> np.ndarray:
    """[x, y, w, h] boxes (n, 4) as corners [x1, y1, x2, y2]."""
    return np.stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]], axis=1)


_xyxy = xyxy


def box_iou(a, b) -> float:
    """IoU of two [x, y, w, h] boxes."""
    return float(iou_matrix(xyxy(np.asarray(a, float).reshape(1, 4)), xyxy(np.asarray(b, float).reshape(1, 4)))[0, 0])


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of xyxy boxes, (len(a), len(b))."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    with np.errstate(over="ignore", invalid="ignore"):  # finite corners 1e308 apart: areas of inf
        wh = np.clip(rb - lt, 0, None)
        inter = wh[..., 0] * wh[..., 1]
        area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
        area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        iou = inter / np.clip(area_a[:, None] + area_b[None, :] - inter, 1e-6, None)
    return np.nan_to_num(iou, nan=0.0, posinf=0.0)  # inf/inf: no measurable overlap


def similarity(a: np.ndarray, b: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    iou = iou_matrix(a, b)
    ca = np.stack([(a[:, 0] + a[:, 2]) / 2, (a[:, 1] + a[:, 3]) / 2], axis=1)
    cb = np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], axis=1)
    dist = np.linalg.norm(ca[:, None, :] - cb[None, :, :], axis=2) if len(a) and len(b) else np.zeros(iou.shape)
    return iou, alpha * iou + (1 - alpha) * np.exp(-dist * EUC_FACTOR)


def _rows(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    if len(ids) == 0:
        return np.full(len(wanted), -1, np.int64)
    order = np.argsort(ids, kind="stable")
    pos = np.minimum(np.searchsorted(ids[order], wanted), len(ids) - 1)
    return np.where(ids[order][pos] == wanted, order[pos], -1)


def _finite_boxes(box: np.ndarray) -> np.ndarray:
    """Boxes whose corners are finite too: x + w of two huge finite numbers overflows to inf, and
    an inf corner makes IoU nan (which argmax would take for the best)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.isfinite(box).all(axis=1) & np.isfinite(box[:, :2] + box[:, 2:]).all(axis=1)


def _valid_labels(ds) -> np.ndarray:
    a = ds.annotations
    box = a.bbox
    ok = (ds.ann_image_row >= 0) & (ds.ann_category_row >= 0) & _finite_boxes(box)
    with np.errstate(invalid="ignore"):
        ok &= (box[:, 2] > 0) & (box[:, 3] > 0)
    crowd = a.iscrowd == 1
    return np.flatnonzero(ok & ~crowd)


def _label_clashes(ds, labels: np.ndarray) -> np.ndarray:
    """Per annotation row: another label of another class on the same image has IoU >= LABEL_OVERLAP.

    The duplicate rules' sort-and-sweep pairs (shared with them, bounded there), not a labels x
    labels matrix per image, which a hostile image of many boxes would make quadratic."""
    from labellint import geometry

    clash = np.zeros(len(ds.annotations), bool)
    if len(labels) < 2:
        return clash
    valid = np.zeros(len(ds.annotations), bool)
    valid[labels] = True
    first, second, _ = geometry.same_image_overlaps(ds, LABEL_OVERLAP)
    cls = ds.ann_category_row
    hit = valid[first] & valid[second] & (cls[first] != cls[second])
    clash[first[hit]] = True
    clash[second[hit]] = True
    return clash


def _count_pairs(img_of_label: np.ndarray, img_of_pred: np.ndarray) -> int:
    if len(img_of_label) == 0 or len(img_of_pred) == 0:
        return 0
    n = int(max(img_of_label.max(), img_of_pred.max())) + 1
    per_l = np.bincount(img_of_label, minlength=n).astype(np.float64)
    per_p = np.bincount(img_of_pred, minlength=n).astype(np.float64)
    return int(per_l @ per_p)


def _similarity_blocks(a: np.ndarray, b: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """similarity() a block of label rows at a time, so that its temporaries stay small."""
    if len(a) * len(b) <= SIM_BLOCK:
        return similarity(a, b, alpha)
    step = max(1, SIM_BLOCK // max(len(b), 1))
    iou = np.empty((len(a), len(b)))
    sim = np.empty((len(a), len(b)))
    for start in range(0, len(a), step):
        iou[start:start + step], sim[start:start + step] = similarity(a[start:start + step], b, alpha)
    return iou, sim


def model_scores(ds, options: dict, context) -> Prepared:
    """What the LL6xx rules share, for this file: the run's predictions (the "predictions" pass)
    scored against its labels with the rule's ``alpha``; computed once per file and alpha."""
    return prepare(ds, context.result("predictions"), float(options["alpha"]))


def prepare(ds, predictions, alpha: float) -> Prepared:
    """Everything the three rules share, computed once per dataset, predictions file and alpha."""
    key = (id(ds), round(float(alpha), 9))
    cached = predictions.cache.get(key)
    if cached is not None and cached[0] is ds:
        return cached[1]
    prepared = _prepare(ds, predictions, alpha)
    for old in [k for k, (other, _) in predictions.cache.items() if other is not ds]:
        del predictions.cache[old]  # the run moved on to another file: keep one dataset's work only
    predictions.cache[key] = (ds, prepared)
    return prepared


def _prepare(ds, predictions, alpha: float) -> Prepared:
    labels = _valid_labels(ds)
    img_of_label = ds.ann_image_row[labels]
    pred_img = _rows(ds.images.id, predictions.image_id)
    pred_cls = _rows(ds.categories.id, predictions.category_id)
    usable = (pred_img >= 0) & (pred_cls >= 0) & _finite_boxes(predictions.bbox)
    if len(ds.images) and len(predictions) and not (pred_img >= 0).any():
        raise LabellintError(f"the predictions ({predictions.path}) are on none of this file's images: "
                             "give the predictions made on this file (matched by image_id)")
    preds = np.flatnonzero(usable)
    # every label is compared with every prediction on its image and both matrices are kept:
    # bound their size before any is made (many boxes on one image would make it quadratic)
    pairs, limit = _count_pairs(img_of_label, pred_img[preds]), limits.get("max_model_pairs")
    if pairs > limit:
        env = limits.LIMITS["max_model_pairs"].env
        raise LabellintError(f"the model-based rules would compare {pairs} (label, prediction) pairs on the same "
                             f"images, more than the limit of {limit} (set {env} to raise it)", ds.path)
    label_xyxy = _xyxy(ds.annotations.bbox[labels]) if len(labels) else np.zeros((0, 4))
    pred_xyxy = _xyxy(predictions.bbox[preds]) if len(preds) else np.zeros((0, 4))
    order_l = np.argsort(img_of_label, kind="stable")
    order_p = np.argsort(pred_img[preds], kind="stable")
    images = []
    min_sim = 1.0
    clash = _label_clashes(ds, labels)
    img_l, img_p = img_of_label[order_l], pred_img[preds][order_p]
    for row in np.union1d(img_l, img_p).tolist():
        ls = order_l[np.searchsorted(img_l, row, "left"):np.searchsorted(img_l, row, "right")]
        ps = order_p[np.searchsorted(img_p, row, "left"):np.searchsorted(img_p, row, "right")]
        iou, sim = _similarity_blocks(label_xyxy[ls], pred_xyxy[ps], alpha)
        nz = sim[sim > 0]
        if nz.size:
            min_sim = min(min_sim, float(nz.min()))
        images.append(Image(row, labels[ls], ds.ann_category_row[labels[ls]], preds[ps], pred_cls[preds[ps]], iou,
                            sim, label_xyxy[ls], clash[labels[ls]]))
    return Prepared(images, min_sim, class_ap(ds, labels, predictions, preds, pred_img, pred_cls), predictions.bbox,
                    predictions.score, pred_cls)


def class_ap(ds, labels, predictions, preds, pred_img, pred_cls) -> np.ndarray:
    """AP (IoU 0.50:0.95) of the predictions for each category row, against the file's own labels.

    Images and categories go to the evaluator numbered by their row (1, 2, ...), never by the
    file's ids: AP does not depend on them, and a negative, duplicate or huge id in a hostile file
    would otherwise be the evaluator's to refuse."""
    n_cat = len(ds.categories)
    out = np.full(n_cat, np.nan)
    if len(labels) == 0:
        return out
    # only the classes that have labels have an AP: the evaluator sees those alone, numbered
    # 1..k, and the images holding their labels or predictions, numbered 1..m (its precision
    # array grows with classes x 12 KB: thousands of unlabelled classes would cost gigabytes)
    label_cat = ds.ann_category_row[labels]
    used_cats = np.unique(label_cat)
    preds = np.asarray(preds)
    preds = preds[np.isin(pred_cls[preds], used_cats)]
    used_imgs = np.unique(np.concatenate([ds.ann_image_row[labels], pred_img[preds]]))
    images = [{"id": k + 1} for k in range(len(used_imgs))]
    categories = [{"id": k + 1, "name": str(k)} for k in range(len(used_cats))]
    boxes = ds.annotations.bbox[labels]
    gt_img = np.searchsorted(used_imgs, ds.ann_image_row[labels]) + 1
    gt_cat = np.searchsorted(used_cats, label_cat) + 1
    det = np.column_stack([(np.searchsorted(used_imgs, pred_img[preds]) + 1).astype(np.float64),
                           predictions.bbox[preds], predictions.score[preds],
                           (np.searchsorted(used_cats, pred_cls[preds]) + 1).astype(np.float64)])
    try:
        import hotcoco

        gt = hotcoco.COCO.from_arrays(images, categories, gt_img, gt_cat, boxes,
                                      ids=np.arange(1, len(labels) + 1), area=boxes[:, 2] * boxes[:, 3],
                                      iscrowd=np.zeros(len(labels), np.int64))
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            dt = gt.load_res(det) if len(det) else gt.load_res([])
            ev = hotcoco.COCOeval(gt, dt, "bbox")
            ev.evaluate()
            ev.accumulate()
        precision, ev_cats = np.asarray(ev.eval["precision"]), list(ev.params.cat_ids)
    except ImportError:  # the reference implementation, slower
        precision, ev_cats = _pycocotools_precision(images, categories, gt_img, gt_cat, boxes, det)
    for k, cid in enumerate(ev_cats):
        p = precision[:, :, k, 0, -1]
        if (p > -1).any() and 1 <= int(cid) <= len(used_cats):
            out[used_cats[int(cid) - 1]] = float(p[p > -1].mean())
    return out


def _pycocotools_precision(images, categories, gt_img, gt_cat, boxes, det):
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    anns = [{"id": k + 1, "image_id": int(i), "category_id": int(c), "bbox": [float(v) for v in b],
             "area": float(b[2] * b[3]), "iscrowd": 0} for k, (i, c, b) in enumerate(zip(gt_img, gt_cat, boxes))]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "categories": categories, "annotations": anns}
        gt.createIndex()
        if len(det):
            dt = gt.loadRes(det)
        else:
            dt = COCO()
            dt.dataset = {"images": images, "categories": categories, "annotations": []}
            dt.createIndex()
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
    return np.asarray(ev.eval["precision"]), list(ev.params.catIds)


def threshold(prepared: Prepared, cls_row: int, scale: float) -> float:
    ap = prepared.class_ap[cls_row] if 0 <= cls_row < len(prepared.class_ap) else np.nan
    return float(scale * (0.0 if not np.isfinite(ap) else ap))


# -- how confident is confident ----------------------------------------------------------------------
AGREE_IOU = 0.5  # a prediction of the label's class at this IoU agrees with the label
MIN_AGREED = 5  # labels a class needs the model to agree with before its bar moves


def confidence_bars(prepared: Prepared, ceiling: float, calibrate: bool, n_classes: int) -> np.ndarray | float:
    """The confidence a prediction needs, per category row: ``ceiling`` (ObjectLab's 0.95), or
    with ``calibrate`` the median confidence the model gives the labels of that class it agrees
    with when that is lower. A detector that is right at 0.8 is trusted at 0.8; one that gives
    every true box 0.96-1.0 keeps the ceiling. A class with fewer than MIN_AGREED agreed labels
    keeps the ceiling (too little evidence)."""
    if not calibrate:
        return float(ceiling)
    key = ("agreed-median", n_classes)
    if key not in prepared.memo:
        prepared.memo[key] = _agreed_median(prepared, n_classes)
    median = prepared.memo[key]
    return np.where(np.isfinite(median), np.minimum(median, ceiling), ceiling)


def _agreed_median(prepared: Prepared, n_classes: int) -> np.ndarray:
    """Per category row, the median score of the predictions matched one to one (most confident
    first, as COCO evaluation matches) to a label of their class at IoU >= AGREE_IOU; nan for a
    class with fewer than MIN_AGREED matches."""
    agreed: list[list[float]] = [[] for _ in range(n_classes)]
    score = prepared.pred_score
    for im in prepared.images:
        if len(im.labels) == 0 or len(im.preds) == 0:
            continue
        taken = np.zeros(len(im.labels), bool)
        for j in np.argsort(-score[im.preds], kind="stable").tolist():
            ok = (im.label_cls == im.pred_cls[j]) & ~taken & (im.iou[:, j] >= AGREE_IOU)
            if ok.any():
                i = int(np.flatnonzero(ok)[np.argmax(im.iou[ok, j])])
                taken[i] = True
                agreed[int(im.pred_cls[j])].append(float(score[im.preds[j]]))
    return np.array([float(np.median(v)) if len(v) >= MIN_AGREED else np.nan for v in agreed])


def _bar(min_confidence, cls: np.ndarray):
    """The bar for predictions of category rows ``cls``: one number, or one per category row."""
    return min_confidence if np.ndim(min_confidence) == 0 else min_confidence[cls]


# -- the three scores -------------------------------------------------------------------------------
def overlooked(prepared: Prepared, min_confidence: float):
    """(image row, prediction row, score) for confident predictions that overlap no label."""
    score = prepared.pred_score
    for im in prepared.images:
        if len(im.preds) == 0:
            continue
        touches = (im.iou > 0).any(axis=0) if len(im.labels) else np.zeros(len(im.preds), bool)
        for j in np.flatnonzero((score[im.preds] >= _bar(min_confidence, im.pred_cls)) & ~touches).tolist():
            same = im.label_cls == im.pred_cls[j]
            if same.any():
                s = float(im.sim[same, j].max())
            else:
                s = prepared.min_similarity * (1 - float(score[im.preds[j]]))
            yield im.row, int(im.preds[j]), s


def unexplained(prepared: Prepared, min_confidence: float, max_iou: float):
    """(image row, prediction row) for confident predictions that touch labels but that no label
    explains: none overlaps them at IoU >= ``max_iou`` (a label there is this object, its class
    right or swapped), and they are not the closest same-class prediction of a label that has no
    better one (that label is this object drawn in the wrong place: LL602's). What is left is an
    object beside labelled neighbours, which ObjectLab (:func:`overlooked`) never considers."""
    score = prepared.pred_score
    for im in prepared.images:
        if len(im.labels) == 0 or len(im.preds) == 0:
            continue
        conf = score[im.preds] >= _bar(min_confidence, im.pred_cls)
        top = im.iou.max(axis=0)
        cand = conf & (top > 0) & (top < max_iou)
        if not cand.any():
            continue
        views = set()
        for i in range(len(im.labels)):
            same = (im.pred_cls == im.label_cls[i]) & conf & (im.iou[i] > 0)
            if same.any() and not (im.iou[i, same] >= max_iou).any():
                views.add(int(np.flatnonzero(same)[np.argmax(im.iou[i, same])]))
        for j in np.flatnonzero(cand).tolist():
            if j not in views:
                yield im.row, int(im.preds[j])


def owners(im: Image) -> np.ndarray:
    """Per prediction of the image, the label (index in ``im.labels``) it overlaps most; -1 when it
    overlaps none, or two labels equally (then it explains neither better)."""
    if len(im.labels) == 0 or len(im.preds) == 0:
        return np.full(len(im.preds), -1, np.int64)
    best = im.iou.argmax(axis=0)
    top = im.iou[best, np.arange(len(im.preds))]
    unique = (im.iou == top[None, :]).sum(axis=0) == 1
    return np.where((top > 0) & unique, best, -1)


def badly_located(prepared: Prepared, min_confidence: float, one_to_one: bool = False, min_iou: float = 0.0):
    """(annotation row, best prediction row, score) for labels with an overlapping same-class prediction.

    With ``one_to_one``, a label is only compared with the predictions it owns and overlaps by at
    least ``min_iou``, and a label owning a same-class prediction at IoU >= WELL_LOCATED is skipped."""
    for ann, pred, sim, _ in located(prepared, min_confidence, one_to_one, min_iou):
        yield ann, pred, sim


def located(prepared: Prepared, min_confidence: float, one_to_one: bool = False, min_iou: float = 0.0):
    """:func:`badly_located` with a fourth value: the best IoU of the label with the predictions it
    was compared with (the candidates), which says how far off the model puts it."""
    score = prepared.pred_score
    for im in prepared.images:
        if len(im.labels) == 0 or len(im.preds) == 0:
            continue
        conf = score[im.preds] > _bar(min_confidence, im.pred_cls)
        owner = owners(im) if one_to_one else None
        for i in range(len(im.labels)):
            same = im.pred_cls == im.label_cls[i]
            cand = same & conf & (im.iou[i] > 0)
            if owner is not None:
                mine = same & (owner == i)
                if (mine & (im.iou[i] >= WELL_LOCATED)).any():
                    continue
                cand &= mine & (im.iou[i] >= min_iou)
            if not cand.any():
                continue
            j = int(np.flatnonzero(cand)[np.argmax(im.sim[i, cand])])
            yield int(im.labels[i]), int(im.preds[j]), float(im.sim[i, j]), float(im.iou[i, cand].max())


def swapped(prepared: Prepared, min_confidence: float, overlapping_label_check: bool = True,
            one_to_one: bool = False):
    """(annotation row, best other-class prediction row or -1, score) for labels that may carry the wrong class.

    With ``one_to_one``, a label is only compared with the predictions it owns: a prediction that
    another label overlaps more is that label's class, not this one's."""
    score = prepared.pred_score
    for im in prepared.images:
        if len(im.labels) == 0:
            continue
        clash = im.clash if overlapping_label_check else np.zeros(len(im.labels), bool)
        conf = score[im.preds] > _bar(min_confidence, im.pred_cls) if len(im.preds) else np.zeros(0, bool)
        owner = owners(im) if one_to_one else None
        for i in range(len(im.labels)):
            if clash[i]:
                yield int(im.labels[i]), -1, prepared.min_similarity
                continue
            cand = (im.pred_cls != im.label_cls[i]) & conf
            if owner is not None:
                cand &= owner == i
            if not cand.any():
                continue
            j = int(np.flatnonzero(cand)[np.argmax(im.sim[i, cand])])
            yield int(im.labels[i]), int(im.preds[j]), max(prepared.min_similarity, 1 - float(im.sim[i, j]))


def disputed(prepared: Prepared, min_confidence, min_iou: float):
    """(annotation row, prediction row) for labels that the model confidently gives another class
    and not their own: a prediction of another class, confident (``min_confidence``, per class or
    one number), that the label owns and that overlaps it at IoU >= ``min_iou``, while no
    prediction of the label's class that it owns there reaches that class's bar. LL603's way in
    beside ObjectLab's score, whose threshold (0.2 x the class's AP) a weak model's slightly
    misplaced box never meets."""
    score = prepared.pred_score
    for im in prepared.images:
        if len(im.labels) == 0 or len(im.preds) == 0:
            continue
        conf = score[im.preds] > _bar(min_confidence, im.pred_cls)
        owner = owners(im)
        for i in range(len(im.labels)):
            near = (owner == i) & conf & (im.iou[i] >= min_iou)
            if (near & (im.pred_cls == im.label_cls[i])).any():
                continue  # the model also sees the labelled class here
            other = near & (im.pred_cls != im.label_cls[i])
            if other.any():
                j = int(np.flatnonzero(other)[np.argmax(score[im.preds[other]])])
                yield int(im.labels[i]), int(im.preds[j])


def _supports(prepared: Prepared, min_confidence: float, min_iou: float):
    """(image, its confident predictions, (labels, preds) where a confident prediction overlaps a
    label at IoU >= ``min_iou``) for each image with labels and at least one confident prediction
    (the images the model judges; elsewhere it is silent, not disagreeing)."""
    score = prepared.pred_score
    for im in prepared.images:
        if len(im.labels) == 0 or len(im.preds) == 0:
            continue
        conf = score[im.preds] >= min_confidence
        if conf.any():
            yield im, conf, (im.iou >= min_iou) & (im.iou > 0) & conf[None, :]


def unsupported(prepared: Prepared, min_confidence: float, min_iou: float):
    """(annotation row, support, confident) for labels that no prediction of any class with
    confidence >= ``min_confidence`` overlaps at IoU >= ``min_iou``, on images where the model
    makes at least one such prediction (elsewhere it is silent, not disagreeing). ``support``:
    the scores of the image's confident predictions that support some label; ``confident``: the
    scores of all its confident predictions."""
    score = prepared.pred_score
    for im, conf, hits in _supports(prepared, min_confidence, min_iou):
        lonely = np.flatnonzero(~hits.any(axis=1))
        if lonely.size == 0:
            continue
        support = score[im.preds[hits.any(axis=0)]]
        confident = score[im.preds[conf]]
        for i in lonely.tolist():
            yield int(im.labels[i]), support, confident


def class_recall(prepared: Prepared, min_confidence: float, min_iou: float, n_classes: int) -> np.ndarray:
    """Per category row, the share of its labels that a prediction of any class with confidence
    >= ``min_confidence`` overlaps at IoU >= ``min_iou``, on the images where the model makes such
    a prediction (those :func:`unsupported` judges); nan for a class with no such label. How far
    the model's silence on a label of that class can be taken as an accusation."""
    judged = np.zeros(n_classes)
    supported = np.zeros(n_classes)
    for im, _, hits in _supports(prepared, min_confidence, min_iou):
        hit = hits.any(axis=1)
        cls = im.label_cls[im.label_cls >= 0]
        np.add.at(judged, cls, 1)
        np.add.at(supported, im.label_cls[(im.label_cls >= 0) & hit], 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return supported / judged


def box_text(b) -> str:
    return "[" + ", ".join(f"{float(v):.4g}" for v in b) + "]"
