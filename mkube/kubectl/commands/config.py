"""`mkubectl config view|get-contexts|current-context|use-context|set-context`.

Works on the kubeconfig files themselves (kubectl's merge rules: the first file to name an
entry wins), so it needs no server. Changes are written atomically to the file kubectl
would write: `--kubeconfig`, else the file defining the context, else the first of
$KUBECONFIG / ~/.kube/config / ~/.mkube/kubeconfig.yaml.
"""

from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path
from typing import Any

import click
import yaml

from mkube.client import kubeconfig
from mkube.kubectl.context import Kube
from mkube.kubectl.encoding import to_json, to_yaml
from mkube.kubectl.errors import CommandError
from mkube.kubectl.group import Group
from mkube.kubectl.output import Out
from mkube.kubectl.printers import render_rows

Obj = dict[str, Any]
_SECTIONS = (("clusters", "cluster"), ("contexts", "context"), ("users", "user"))


def _paths(kube: Kube) -> list[Path]:
    if kube.settings.kubeconfig:
        return [Path(kube.settings.kubeconfig).expanduser()]
    return kubeconfig.default_paths()


def _load(path: Path) -> Obj:
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except OSError as e:
        raise CommandError(f"cannot read kubeconfig {path}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise CommandError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(doc, dict):
        raise CommandError(f"{path}: a kubeconfig must be a mapping")
    return doc


def merged(kube: Kube) -> Obj:
    """The merged kubeconfig document of every file in use."""
    out: Obj = {"apiVersion": "v1", "kind": "Config", "preferences": {}, "clusters": None, "contexts": None,
                "users": None, "current-context": ""}
    for path in _paths(kube):
        if not path.exists():
            continue
        doc = _load(path)
        for section, _ in _SECTIONS:
            have = {e.get("name") for e in out[section] or []}
            for entry in doc.get(section) or []:
                if isinstance(entry, dict) and entry.get("name") not in have:
                    out[section] = (out[section] or []) + [copy.deepcopy(entry)]
        if not out["current-context"] and doc.get("current-context"):
            out["current-context"] = doc["current-context"]
    if kube.settings.context:
        out["current-context"] = kube.settings.context
    return out


def _redact(doc: Obj) -> Obj:
    doc = copy.deepcopy(doc)
    for entry in doc.get("clusters") or []:
        c = entry.get("cluster") or {}
        if c.get("certificate-authority-data"):
            c["certificate-authority-data"] = "DATA+OMITTED"
    for entry in doc.get("users") or []:
        u = entry.get("user") or {}
        for key in ("client-certificate-data", "client-key-data"):
            if u.get(key):
                u[key] = "DATA+OMITTED"
        if u.get("token"):
            u["token"] = "REDACTED"
        if u.get("password"):
            u["password"] = "REDACTED"
    return doc


def _minify(doc: Obj) -> Obj:
    current = doc.get("current-context")
    ctx = next((c for c in doc.get("contexts") or [] if c.get("name") == current), None)
    if ctx is None:
        raise CommandError("current-context must exist in order to minify")
    cluster = (ctx.get("context") or {}).get("cluster")
    user = (ctx.get("context") or {}).get("user")
    return {**doc, "contexts": [ctx],
            "clusters": [c for c in doc.get("clusters") or [] if c.get("name") == cluster] or None,
            "users": [u for u in doc.get("users") or [] if u.get("name") == user] or None}


def _write(path: Path, doc: Obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    fd, tmp = tempfile.mkstemp(prefix=".kubeconfig.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(to_yaml(doc))
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _target_file(kube: Kube, section: str | None = None, name: str | None = None) -> Path:
    paths = _paths(kube)
    if kube.settings.kubeconfig:
        return paths[0]
    if section and name:
        for path in paths:
            if path.exists() and any(isinstance(e, dict) and e.get("name") == name
                                     for e in _load(path).get(section) or []):
                return path
    existing = [p for p in paths if p.exists()]
    if existing:
        return existing[0]
    if paths:
        return paths[-1]
    return Path("~/.kube/config").expanduser()


@click.group("config", cls=Group)
def config_command() -> None:
    """Modify kubeconfig files."""


@config_command.command("view")
@click.option("--raw", is_flag=True, help="Show certificates and tokens.")
@click.option("--minify", is_flag=True, help="Only what the current context uses.")
@click.option("-o", "--output", type=click.Choice(["yaml", "json"]), default="yaml")
@click.pass_obj
def view_command(kube: Kube, raw: bool, minify: bool, output: str) -> None:
    """Display merged kubeconfig settings."""
    doc = merged(kube)
    if minify:
        doc = _minify(doc)
    if not raw:
        doc = _redact(doc)
    Out().write(to_json(doc) + "\n" if output == "json" else to_yaml(doc))


@config_command.command("get-contexts")
@click.argument("name", required=False)
@click.option("-o", "--output", type=click.Choice(["name"]))
@click.option("--no-headers", is_flag=True)
@click.pass_obj
def get_contexts_command(kube: Kube, name: str | None, output: str | None, no_headers: bool) -> None:
    """Describe one or many contexts."""
    doc = merged(kube)
    contexts = [c for c in doc.get("contexts") or [] if not name or c.get("name") == name]
    if name and not contexts:
        raise CommandError(f'context {name} not found')
    out = Out()
    if output == "name":
        for c in contexts:
            out.line(str(c.get("name")))
        return
    rows = []
    for c in sorted(contexts, key=lambda c: str(c.get("name"))):
        body = c.get("context") or {}
        rows.append(["*" if c.get("name") == doc.get("current-context") else "", str(c.get("name")),
                     str(body.get("cluster") or ""), str(body.get("user") or ""), str(body.get("namespace") or "")])
    text = render_rows(["CURRENT", "NAME", "CLUSTER", "AUTHINFO", "NAMESPACE"], rows)
    out.write(text.split("\n", 1)[1] if no_headers else text)


@config_command.command("current-context")
@click.pass_obj
def current_context_command(kube: Kube) -> None:
    """Display the current-context."""
    current = merged(kube).get("current-context")
    if not current:
        raise CommandError("current-context is not set")
    Out().line(str(current))


@config_command.command("use-context")
@click.argument("name")
@click.pass_obj
def use_context_command(kube: Kube, name: str) -> None:
    """Set the current-context in a kubeconfig file."""
    if not any(c.get("name") == name for c in merged(kube).get("contexts") or []):
        raise CommandError(f'no context exists with the name: "{name}"')
    path = _target_file(kube)
    doc: Obj = _load(path) if path.exists() else {"apiVersion": "v1", "kind": "Config"}
    doc["current-context"] = name
    _write(path, doc)
    Out().line(f'Switched to context "{name}".')


@config_command.command("set-context")
@click.argument("name", required=False)
@click.option("--current", is_flag=True, help="Modify the current context.")
@click.option("--namespace", "ns", help="The context's namespace.")
@click.option("--cluster", help="The context's cluster.")
@click.option("--user", help="The context's user.")
@click.pass_obj
def set_context_command(kube: Kube, name: str | None, current: bool, ns: str | None, cluster: str | None,
                        user: str | None) -> None:
    """Set a context entry in kubeconfig."""
    # `--namespace` is also the global flag, which is parsed first: take it from there.
    ns = ns if ns is not None else kube.settings.namespace
    if current and name:
        raise CommandError("you cannot specify both a context name and --current")
    if current:
        name = str(merged(kube).get("current-context") or "")
        if not name:
            raise CommandError("no current context is set")
    if not name:
        raise CommandError("you must specify a non-empty context name or --current")
    path = _target_file(kube, "contexts", name)
    doc: Obj = _load(path) if path.exists() else {"apiVersion": "v1", "kind": "Config"}
    contexts: list[Any] = doc.get("contexts") or []
    doc["contexts"] = contexts
    entry = next((c for c in contexts if isinstance(c, dict) and c.get("name") == name), None)
    created = entry is None
    if entry is None:
        entry = {"name": name, "context": {}}
        contexts.append(entry)
    body = entry.setdefault("context", {}) or {}
    entry["context"] = body
    for key, value in (("namespace", ns), ("cluster", cluster), ("user", user)):
        if value is not None:
            body[key] = value
    _write(path, doc)
    Out().line(f'Context "{name}" {"created" if created else "modified"}.')
