"""`mkubectl exec POD [-c C] -- CMD ARGS...`.

Real kubectl upgrades the connection (SPDY/WebSocket) to stream stdin/stdout/stderr. mkube
uses a plain request instead: POST /api/v1/namespaces/NS/pods/NAME/exec with the command
and container as query parameters (`command` repeated, as kubectl sends them); the API
server has the node's kubelet run it to completion and answers
{"kind": "ExecResult", "exitCode": N, "output": "..."}. mkubectl prints the output and
exits with the command's exit code. Interactive sessions (-i/-t) are not supported.
"""

from __future__ import annotations

import sys
from typing import Any

import click
import httpx

from mkube.kubectl import fetch, polymorphic, resources
from mkube.kubectl.context import Kube
from mkube.kubectl.errors import CommandError, ExitError
from mkube.kubectl.output import err


@click.command("exec")
@click.argument("pod_name")
@click.argument("command", nargs=-1, required=True)
@click.option("-c", "--container", help="The container (default: the pod's default container).")
@click.option("-i", "--stdin", is_flag=True, help="Pass stdin to the container (not supported yet).")
@click.option("-t", "--tty", is_flag=True, help="Allocate a TTY (not supported yet).")
@click.pass_obj
def exec_command(kube: Kube, pod_name: str, command: tuple[str, ...], container: str | None, stdin: bool,
                 tty: bool) -> None:
    """Execute a command in a container."""
    if stdin or tty:
        raise CommandError("interactive exec (-i/-t) is not supported by mkubectl yet")
    if "/" in pod_name:
        type_, _, name = pod_name.partition("/")
        rt = resources.resolve_type(type_)
        obj = fetch.get_object(kube.client, rt, name, kube.namespace)
        if rt.kind != "Pod":
            pods = polymorphic.pods_for(kube.client, rt, obj, kube.namespace)
            if not pods:
                raise CommandError(f"no pods found for {pod_name}")
            obj = pods[0]
    else:
        obj = fetch.get_object(kube.client, resources.resolve_type("pods"), pod_name, kube.namespace)
    name = str(obj["metadata"]["name"])
    if not container:
        container, chose = polymorphic.default_container(obj)
        if chose:
            err(f'Defaulted container "{container}" out of: {polymorphic.all_container_names(obj)}')
    path = f"/api/v1/namespaces/{kube.namespace}/pods/{name}/exec"
    params: dict[str, Any] = {"command": list(command), "container": container, "stdout": "true",
                              "stderr": "true"}
    # Client.request() has no repeated query parameters; _send has (httpx takes a list).
    resp = kube.client._send("POST", path, params=params,
                             timeout=httpx.Timeout(kube.settings.request_timeout, read=None))
    result = resp.json()
    sys.stdout.write(str(result.get("output", "")))
    sys.stdout.flush()
    code = int(result.get("exitCode", 0))
    if code:
        raise ExitError(code)
