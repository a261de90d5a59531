"""labellint: a label-quality linter for COCO object-detection datasets."""

__version__ = "0.1.0"
