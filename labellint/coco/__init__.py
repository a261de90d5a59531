"""COCO loading: typed decode, numpy columns, id indexes and source positions."""

from labellint.coco.dataset import MISSING_ID, Dataset, SchemaIssue, SegmentationColumn
from labellint.coco.load import NotCoco, load, load_bytes

__all__ = ["MISSING_ID", "Dataset", "SchemaIssue", "SegmentationColumn", "NotCoco", "load", "load_bytes"]
