"""Reporters: text (rich), json, sarif, github, html (the review gallery). Each takes a run Result and returns/prints it."""

from __future__ import annotations

FORMATS = ("text", "json", "sarif", "github", "html")
