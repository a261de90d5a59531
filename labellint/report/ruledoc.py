"""A rule's documentation: its sections, parsed once per rule however many reports quote them,
the rules table of the README, and a rule's doc for the terminal (``labellint rule CODE``)."""

from __future__ import annotations

from functools import lru_cache
from types import MappingProxyType
from typing import Mapping

from rich.console import Console
from rich.text import Text

from labellint.registry import doc_sections


def sections(rule) -> Mapping[str, str]:
    """``## title`` -> its text, for ``rule``'s docstring (read-only: the parse is shared)."""
    return _parsed(rule.doc)


@lru_cache(maxsize=1024)  # keyed on the text itself: what is parsed, whatever rule carries it
def _parsed(doc: str) -> Mapping[str, str]:
    return MappingProxyType(doc_sections(doc))


def rules_markdown(rules) -> str:
    lines = ["| code | name | severity | fix | what it checks |", "|---|---|---|---|---|"]
    for r in rules:
        summary = r.summary.replace("|", "\\|")
        lines.append(f"| {r.code} | `{r.name}` | {r.severity} | {r.fix} | {summary} |")
    return "\n".join(lines) + "\n"


# the labels of a rule doc's ```json bad``` / ```json good``` examples (registry.Rule.examples)
EXAMPLE_LABELS = {"bad": ("✗ reported", "bold red"), "good": ("✓ clean", "bold green")}


def print_rule_doc(console: Console, doc: str) -> None:
    """A rule docstring (Markdown) for the terminal: each example under its label ("✗ reported",
    "✓ clean"), code blocks highlighted but neither boxed nor padded, and no line padded to the
    terminal width (rich pads paragraphs, list items and code blocks with trailing spaces)."""
    from rich.markdown import CodeBlock, Markdown  # ~30 ms of imports only this command needs
    from rich.segment import Segment, Segments
    from rich.syntax import Syntax

    class Example(CodeBlock):
        label: str | None = None

        @classmethod
        def create(cls, markdown, token):
            lexer, _, label = (token.info or "").strip().partition(" ")
            block = cls(lexer or "text", markdown.code_theme)
            block.label = label.strip() or None
            return block

        def __rich_console__(self, console, options):
            if self.label:
                shown, style = EXAMPLE_LABELS.get(self.label, (self.label, "bold"))
                yield Text(shown, style=style)
            code = str(self.text).rstrip()
            highlighted = Syntax(code, self.lexer_name, theme=self.theme, background_color="default").highlight(code)
            for line in highlighted.split("\n"):
                yield Text("  ") + line

    class RuleDoc(Markdown):
        elements = {**Markdown.elements, "fence": Example, "code_block": Example}

    options = console.options
    if console.soft_wrap:  # a pipe: paragraphs stay whole lines, as console.print(soft_wrap=True) leaves them
        options = options.update(width=max(options.max_width, len(doc) + 8), no_wrap=True, overflow="ignore")
    out: list = []
    for line in console.render_lines(RuleDoc(doc), options, pad=False):
        while line and not line[-1].control and not line[-1].text.rstrip():
            line.pop()
        if line and not line[-1].control:
            line[-1] = Segment(line[-1].text.rstrip(), line[-1].style)
        out += [*line, Segment.line()]
    console.print(Segments(out), end="")
