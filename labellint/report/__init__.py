"""Reporters: text (rich), json, sarif, github, html (the review gallery), found by name in
:mod:`labellint.report.registry`. Each turns a run's Result into its output."""
