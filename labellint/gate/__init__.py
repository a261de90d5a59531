"""The companion: retrain a detector, evaluate it, and gate dataset changes on mAP regressions.

``evaluate``: COCO-style evaluation (hotcoco for speed, pycocotools as the reference).
``train``: torchvision detection training on a COCO split (torch is imported only there).
``compare``: baseline against candidate, paired bootstrap over images, the gate's verdict.
``retrain``: the study's loop in one call, with runs cached by content.
``predictions``: COCO results files, read once and checked against a ground truth.
``objectlab``: model-based label-issue scores for the LL6xx rules.

Nothing in this package imports torch at module level: the core CLI works without it.
"""
