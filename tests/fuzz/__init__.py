"""A structure-aware fuzzer for the labellint command line.

Real COCO files (and documents it builds itself when ../shared is absent) are mutated along their
structure (types swapped, keys deleted or repeated, extreme numbers, hostile strings, deep nesting,
broken bytes, thousands of copies, absurd polygons and RLE) together with predictions files,
labellint.toml configurations and review-decision files; each case runs the real command line
under a memory and a time limit, and an oracle checks what a user must be able to rely on: exit
code 0, 1 or 2, no traceback, no terminal escapes from the data, valid machine output, and files
that --fix writes are whole JSON.

``tests/fuzz/test_fuzz.py`` runs a fixed number of cases with a fixed seed in CI;
``benchmarks/fuzz.py`` runs as long as a developer likes and keeps each failure with a one-line
reproduction (see harness.py for the design).
"""
