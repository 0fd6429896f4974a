"""The subcommands of mkubectl, one module each."""

from __future__ import annotations

import click

from mkube.kubectl.commands.apply import apply_command
from mkube.kubectl.commands.create import create_command
from mkube.kubectl.commands.delete import delete_command
from mkube.kubectl.commands.describe import describe_command
from mkube.kubectl.commands.get import get_command
from mkube.kubectl.commands.rollout import rollout_command

COMMANDS: list[click.Command] = [
    get_command,
    create_command,
    apply_command,
    delete_command,
    describe_command,
    rollout_command,
]
