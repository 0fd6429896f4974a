"""Writing to stdout/stderr: remembers whether anything was printed (kubectl prints "No
resources found" only when nothing was), flushes so watches and followed logs appear at
once."""

from __future__ import annotations

import sys

import click


class Out:
    def __init__(self) -> None:
        self.written = False

    def write(self, text: str) -> None:
        if text:
            click.echo(text, nl=False)
            sys.stdout.flush()
            self.written = True

    def line(self, text: str) -> None:
        self.write(text + "\n")


def err(text: str) -> None:
    """One line on stderr."""
    click.echo(text, err=True)
