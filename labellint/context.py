"""What a run knows beyond one rule's options: the run context every rule receives.

``options`` holds only a rule's documented options (from its defaults and the config); where the
images are, which backbone and device embed them, the predictions, the progress display and the
file being linted come in a :class:`RunContext`, the third argument of ``check``. The engine
gives each file its own copy (:meth:`RunContext.for_file`) holding the results of the passes its
rules asked for (:mod:`labellint.passes`), so a rule reads ``context.result("images")`` instead
of starting work of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any


@dataclass
class RunContext:
    images: Path | None = None  # --images: the image root
    backbone: str | None = None  # --backbone or LABELLINT_BACKBONE: an ONNX model
    device: str | None = None  # --device: auto, cpu, cuda
    batch_size: int | None = None  # --batch-size of the backbone
    no_cache: bool = False  # --no-cache
    predictions: Any = None  # --predictions, read once per run (labellint.gate.predictions.Predictions)
    console: Any = None  # rich Console for warnings, or None
    progress: Any = None  # the run's rich Progress, or None (progress bars off)
    notes: list[str] = field(default_factory=list)  # one-line notes for the report, each once
    source: Path | None = None  # the annotation file being linted
    decode_threads: int = 0  # image decode threads; 0: one per core (2 to 8)
    executor: Any = None  # runs the images pass elsewhere (--ray: labellint.distributed); None: here
    results: dict = field(default_factory=dict)  # pass name -> its result for this file

    def has(self, need: str) -> bool:
        """Whether the run was given the input ``need`` ("images", "backbone", "predictions")."""
        return bool(getattr(self, need, None))

    def for_file(self, source: Path | None) -> RunContext:
        """This run's context for one file: its own source and pass results, the same notes."""
        return replace(self, source=source, results={})

    def result(self, name: str):
        """The result of the pass ``name`` for this file (the engine ran it before any check)."""
        return self.results[name]

    def note(self, message: str) -> None:
        """A note for the report, said once however often it is asked."""
        if message not in self.notes:
            self.notes.append(message)
