"""Errors that end a run with exit code 2 and a one-line message (never a traceback)."""

from __future__ import annotations


class LabellintError(Exception):
    """A usage, configuration or input error. ``str()`` is the one-line message."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None, column: int | None = None):
        self.message = message
        self.path = path
        self.line = line
        self.column = column
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = ""
        if self.path:
            where = self.path
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        return where + self.message.replace("\n", " ")


class InputError(LabellintError):
    """A file that cannot be read or parsed."""


class ConfigError(LabellintError):
    """Invalid configuration or command-line selection."""
