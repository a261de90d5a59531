"""Built-in rules: one module per rule. ``labellint rules`` lists them; ``labellint rule CODE``
prints a rule's documentation, which is its module docstring."""
