"""The command group every labellint command runs under: a LabellintError is one line and exit
2, never a traceback (LABELLINT_DEBUG shows it). Shared by cli.py and ``python -m labellint
evaluate``, which runs without importing cli.py (labellint.gate.commands.main_alone)."""

from __future__ import annotations

import os

import click

from labellint.errors import LabellintError
from labellint.fsutil import line_for_people


class GuardedGroup(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except LabellintError as exc:
            # a path as people read it: an absolute one (a config found upwards) relative to the cwd
            click.echo(f"labellint: error: {line_for_people(exc)}", err=True)
            ctx.exit(2)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            click.echo("labellint: interrupted", err=True)
            ctx.exit(130)
        except Exception as exc:  # never a traceback for users; LABELLINT_DEBUG shows it
            if os.environ.get("LABELLINT_DEBUG"):
                raise
            click.echo(f"labellint: internal error: {type(exc).__name__}: {exc} "
                       "(set LABELLINT_DEBUG=1 for the traceback)", err=True)
            ctx.exit(2)
