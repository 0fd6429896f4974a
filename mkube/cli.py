"""The `mkube` launcher: the one place that wires components together.

Minimal for now (the `apiserver` subcommand); the lead extends it.
"""

from __future__ import annotations

import click

from mkube.apiserver.server import apiserver_command


@click.group()
def main() -> None:
    """mkube: a small container orchestrator that speaks the Kubernetes API."""


main.add_command(apiserver_command, "apiserver")


if __name__ == "__main__":
    main()
