"""`mkubectl run NAME --image=IMAGE [-- args]`: one Pod labelled run=NAME, like kubectl run."""

from __future__ import annotations

from typing import Any

import click

from mkube.kubectl import resources
from mkube.kubectl.commands.common import done_line
from mkube.kubectl.context import Kube
from mkube.kubectl.errors import CommandError
from mkube.kubectl.fetch import typed
from mkube.kubectl.output import Out
from mkube.kubectl.printers import ObjectPrinter, dry_run_view, name_of, parse_output

Obj = dict[str, Any]


def _pairs(text: str, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise CommandError(f"invalid {what} spec: {part}")
        out[key.strip()] = value
    return out


def build_pod(name: str, image: str, *, port: int | None, restart: str, env: tuple[str, ...], labels: str | None,
              command: bool, args: tuple[str, ...], image_pull_policy: str | None,
              annotations: tuple[str, ...] = ()) -> Obj:
    """The Pod `kubectl run` generates."""
    container: Obj = {"name": name, "image": image, "resources": {}}
    if image_pull_policy:
        container["imagePullPolicy"] = image_pull_policy
    if port is not None:
        container["ports"] = [{"containerPort": port}]
    if env:
        container["env"] = []
        for item in env:
            key, eq, value = item.partition("=")
            if not eq or not key:
                raise CommandError(f"invalid env: {item}")
            container["env"].append({"name": key, "value": value})
    if args:
        container["command" if command else "args"] = list(args)
    elif command:
        raise CommandError("--command requires that at least one argument be provided")
    meta: Obj = {"name": name, "labels": _pairs(labels, "label") if labels else {"run": name}}
    if annotations:
        meta["annotations"] = dict(a.split("=", 1) for a in annotations if "=" in a)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [container], "dnsPolicy": "ClusterFirst", "restartPolicy": restart},
            "status": {}}


@click.command("run", context_settings={"ignore_unknown_options": False})
@click.argument("name")
@click.argument("args", nargs=-1)
@click.option("--image", required=True, help="The container image.")
@click.option("--port", type=int, help="The port the container exposes.")
@click.option("--restart", type=click.Choice(["Always", "OnFailure", "Never"]), default="Always",
              show_default=True, help="The pod's restart policy.")
@click.option("--env", multiple=True, help="K=V environment variables (repeatable).")
@click.option("-l", "--labels", help="k=v,k2=v2 labels (default run=NAME).")
@click.option("--annotations", multiple=True, help="k=v annotations (repeatable).")
@click.option("--command", is_flag=True, help="Use the arguments after -- as the command, not args.")
@click.option("--image-pull-policy", type=click.Choice(["Always", "IfNotPresent", "Never"]))
@click.option("--dry-run", type=click.Choice(["none", "client", "server"]), default="none")
@click.option("-o", "--output", help="name|yaml|json|jsonpath=...")
@click.pass_obj
def run_command(kube: Kube, name: str, args: tuple[str, ...], image: str, port: int | None, restart: str,
                env: tuple[str, ...], labels: str | None, annotations: tuple[str, ...], command: bool,
                image_pull_policy: str | None, dry_run: str, output: str | None) -> None:
    """Run a particular image in a pod."""
    pod = build_pod(name, image, port=port, restart=restart, env=env, labels=labels, command=command, args=args,
                    image_pull_policy=image_pull_policy, annotations=annotations)
    pods = resources.resolve_type("pods")
    printer = ObjectPrinter(parse_output(output), name_of) if output else None
    out = Out()
    if dry_run == "client":
        out.write(printer.render(dry_run_view(pod)) if printer else done_line(pods, name, "created (dry run)") + "\n")
        return
    pod["metadata"]["namespace"] = kube.namespace
    created = kube.client.create_raw(pods, pod, kube.namespace)
    if printer is not None:
        out.write(printer.render(typed(pods, created)))
    else:
        out.line(done_line(pods, name, "created"))
