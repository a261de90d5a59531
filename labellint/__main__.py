"""``python -m labellint``: the command line.

``evaluate`` goes straight to its command (labellint.gate.commands.main_alone), without importing
the whole command line first: start-up is a noticeable part of evaluating even 500,000 detections.
"""

import sys


def main() -> None:
    if sys.argv[1:2] == ["evaluate"]:
        from labellint.gate.commands import main_alone

        main_alone(sys.argv[1:])
        return
    from labellint import cli

    cli.fast_exit = True  # a process of its own: a check may skip the interpreter's teardown
    cli.main()


if __name__ == "__main__":
    main()
