"""`mkubectl exec POD [-c C] -- CMD ARGS...`.

Real kubectl upgrades the connection (SPDY/WebSocket) to stream stdin/stdout/stderr. mkube
uses a plain request instead: POST /api/v1/namespaces/NS/pods/NAME/exec with the command
and container as query parameters (`command` repeated, as kubectl sends them), and the
answer body is the command's output. Interactive sessions (-i/-t) are not supported yet.
"""

from __future__ import annotations

from urllib.parse import urlencode

import click

from mkube.kubectl import fetch, polymorphic, resources
from mkube.kubectl.context import Kube
from mkube.kubectl.errors import CommandError
from mkube.kubectl.output import Out, err


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
    query = urlencode([("command", c) for c in command] +
                      [("container", container), ("stdout", "true"), ("stderr", "true")])
    path = f"/api/v1/namespaces/{kube.namespace}/pods/{name}/exec?{query}"
    result = kube.client.request("POST", path)
    text = result if isinstance(result, str) else str(result)
    Out().write(text)
