"""Regenerate the rule table in README.md from the rule modules (a test fails when they drift)."""

import re
from pathlib import Path

from labellint.cli import rules_markdown
from labellint.registry import all_rules

readme = Path(__file__).resolve().parents[1] / "README.md"
text = readme.read_text()
new = re.sub(r"(<!-- rules:start -->\n).*?(<!-- rules:end -->)",
             lambda m: m.group(1) + rules_markdown(all_rules()) + m.group(2), text, flags=re.S)
readme.write_text(new)
print("README.md rule table:", "updated" if new != text else "already current")
