"""Changing datasets: rule fixes (``check --fix``) and review decisions (``labellint apply``),
both written back byte for byte except where they change something (see jsonedit)."""
