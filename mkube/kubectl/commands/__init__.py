"""The subcommands of mkubectl, one module each (in `mkubectl --help` order)."""

from __future__ import annotations

import click

from mkube.kubectl.commands.apply import apply_command
from mkube.kubectl.commands.cluster import api_resources_command, cluster_info_command, version_command
from mkube.kubectl.commands.config import config_command
from mkube.kubectl.commands.create import create_command
from mkube.kubectl.commands.delete import delete_command
from mkube.kubectl.commands.describe import describe_command
from mkube.kubectl.commands.exec import exec_command
from mkube.kubectl.commands.expose import expose_command
from mkube.kubectl.commands.get import get_command
from mkube.kubectl.commands.logs import logs_command
from mkube.kubectl.commands.replace import replace_command
from mkube.kubectl.commands.rollout import rollout_command
from mkube.kubectl.commands.run import run_command
from mkube.kubectl.commands.scale import scale_command

COMMANDS: list[click.Command] = [
    create_command, expose_command, run_command, get_command, delete_command, apply_command, replace_command,
    rollout_command, scale_command, describe_command, logs_command, exec_command, cluster_info_command,
    api_resources_command, config_command, version_command,
]
