"""`mkubectl cluster-info`, `version`, `api-resources`."""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from typing import Any

import click

from mkube.api.errors import ApiError
from mkube.kubectl.context import Kube
from mkube.kubectl.encoding import to_json, to_yaml
from mkube.kubectl.errors import CommandError, ExitError, error_line
from mkube.kubectl.output import Out, err
from mkube.kubectl.printers import render_rows

Obj = dict[str, Any]


@click.command("cluster-info")
@click.pass_obj
def cluster_info_command(kube: Kube) -> None:
    """Display the address of the control plane."""
    kube.client.server_version()  # fails with kubectl's connection message when unreachable
    Out().line(f"Kubernetes control plane is running at {kube.client.server}")


def client_version() -> Obj:
    try:
        version = metadata.version("mkube")
    except metadata.PackageNotFoundError:
        version = "0.0.0"
    major, _, rest = version.partition(".")
    minor = rest.split(".")[0]
    return {"major": major, "minor": minor, "gitVersion": f"v{version}", "gitCommit": "", "gitTreeState": "",
            "buildDate": "", "goVersion": f"python{platform.python_version()}", "compiler": sys.implementation.name,
            "platform": f"{platform.system().lower()}/{platform.machine().lower().replace('x86_64', 'amd64')}"}


@click.command("version")
@click.option("--client", "client_only", is_flag=True, help="Only the client version.")
@click.option("-o", "--output", type=click.Choice(["yaml", "json"]), help="yaml or json.")
@click.pass_obj
def version_command(kube: Kube, client_only: bool, output: str | None) -> None:
    """Print the client and server version information."""
    doc: Obj = {"clientVersion": client_version()}
    failure = None
    if not client_only:
        try:
            doc["serverVersion"] = kube.client.server_version()
        except ApiError as e:
            failure = error_line(e)
    out = Out()
    if output == "json":
        out.line(to_json(doc))
    elif output == "yaml":
        out.write(to_yaml(doc))
    else:
        out.line(f"Client Version: {doc['clientVersion']['gitVersion']}")
        if "serverVersion" in doc:
            out.line(f"Server Version: {doc['serverVersion'].get('gitVersion', '')}")
    if failure:
        err(failure)
        raise ExitError(1)


def discover(kube: Kube) -> list[tuple[str, str, Obj]]:
    """(group, groupVersion, APIResource) of every served resource, sorted by group then
    name (kubectl api-resources' order)."""
    client = kube.client
    found: list[tuple[str, str, Obj]] = []
    core = client.request("GET", "/api/v1")
    for r in core.get("resources") or []:
        found.append(("", "v1", r))
    groups = client.request("GET", "/apis").get("groups") or []
    for g in sorted(groups, key=lambda g: str(g.get("name"))):
        gv = ((g.get("preferredVersion") or {}).get("groupVersion")
              or ((g.get("versions") or [{}])[0]).get("groupVersion"))
        if not gv:
            continue
        data = client.request("GET", f"/apis/{gv}")
        for r in data.get("resources") or []:
            found.append((str(g.get("name")), str(gv), r))
    served = [f for f in found if "/" not in str(f[2].get("name"))]
    return sorted(served, key=lambda f: (f[0], str(f[2].get("name"))))


@click.command("api-resources")
@click.option("-o", "--output", type=click.Choice(["wide", "name"]), help="wide or name.")
@click.option("--namespaced", type=click.BOOL, default=None, help="Only namespaced (true) or cluster (false).")
@click.option("--api-group", default=None, help="Only this API group ('' for core).")
@click.option("--no-headers", is_flag=True, help="Leave out the header.")
@click.pass_obj
def api_resources_command(kube: Kube, output: str | None, namespaced: bool | None, api_group: str | None,
                          no_headers: bool) -> None:
    """Print the supported API resources on the server."""
    rows = []
    for group, gv, r in discover(kube):
        if namespaced is not None and bool(r.get("namespaced")) != namespaced:
            continue
        if api_group is not None and group != api_group:
            continue
        rows.append((group, gv, r))
    out = Out()
    if output == "name":
        for group, _, r in rows:
            out.line(f"{r.get('name')}.{group}" if group else str(r.get("name")))
        return
    headers = ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    if output == "wide":
        headers += ["VERBS", "CATEGORIES"]
    table = []
    for _, gv, r in rows:
        row = [str(r.get("name")), ",".join(r.get("shortNames") or []), gv,
               "true" if r.get("namespaced") else "false", str(r.get("kind"))]
        if output == "wide":
            row += [",".join(r.get("verbs") or []), ",".join(r.get("categories") or [])]
        table.append(row)
    if not table:
        raise CommandError("no resources match")
    text = render_rows(headers, table)
    out.write(text.split("\n", 1)[1] if no_headers else text)
