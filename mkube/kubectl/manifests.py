"""Reading `-f` arguments: files, directories (`-R`), `-` (stdin); YAML or JSON; many
documents per file; `kind: List` expanded.

Every object comes back with the file it came from (kubectl names it in errors:
`error when creating "web.yaml": ...`). Problems are `CommandError`s worded like
kubectl's: `the path "x.yaml" does not exist`, `error parsing x.yaml: ... line N ...`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

from mkube.api import kinds
from mkube.api.kinds import ResourceType
from mkube.kubectl.errors import CommandError

Obj = dict[str, Any]
_EXTENSIONS = (".json", ".yaml", ".yml")
STDIN = "STDIN"


@dataclass
class Manifest:
    """One object from a file; `source` is the path as the user wrote it (or "STDIN")."""

    source: str
    obj: Obj

    @property
    def name(self) -> str:
        return str((self.obj.get("metadata") or {}).get("name") or "")

    @property
    def namespace(self) -> str:
        return str((self.obj.get("metadata") or {}).get("namespace") or "")


def _files(arg: str, recursive: bool) -> list[tuple[str, Path]]:
    p = Path(arg)
    if not p.exists():
        raise CommandError(f'the path "{arg}" does not exist')
    if p.is_file():
        return [(arg, p)]
    found: list[tuple[str, Path]] = []
    if recursive:
        for root, dirs, names in os.walk(p):
            dirs.sort()
            for name in sorted(names):
                if name.endswith(_EXTENSIONS):
                    full = Path(root) / name
                    found.append((str(full), full))
    else:
        for child in sorted(p.iterdir()):
            if child.is_file() and child.name.endswith(_EXTENSIONS):
                found.append((str(child), child))
    return found


def _yaml_error(source: str, err: yaml.YAMLError) -> CommandError:
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    problem = getattr(err, "problem", None) or str(err)
    context = getattr(err, "context", None)
    detail = f"{context} {problem}" if context and problem else (problem or str(err))
    if mark is not None:
        return CommandError(f"error parsing {source}: error converting YAML to JSON: yaml: "
                            f"line {mark.line + 1}: {detail}")
    return CommandError(f"error parsing {source}: error converting YAML to JSON: yaml: {detail}")


def _parse_json_stream(source: str, text: str) -> list[Any]:
    decoder = json.JSONDecoder()
    docs: list[Any] = []
    i = 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return docs
        try:
            doc, i = decoder.raw_decode(text, i)
        except json.JSONDecodeError as e:
            raise CommandError(f"error parsing {source}: json: line {e.lineno} column {e.colno}: {e.msg}") from None
        docs.append(doc)


def parse_documents(source: str, text: str) -> list[Any]:
    """The documents of one file (JSON stream if it starts with `{`, else YAML)."""
    if text.lstrip().startswith("{"):
        return _parse_json_stream(source, text)
    try:
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:
        raise _yaml_error(source, e) from None


def _flatten(source: str, doc: Any) -> Iterable[Obj]:
    if not isinstance(doc, dict):
        raise CommandError(f'error validating "{source}": error validating data: the document is a '
                           f"{type(doc).__name__}, not an object")
    missing = [f"{key} not set" for key in ("apiVersion", "kind") if not doc.get(key)]
    if missing:
        raise CommandError(f'error validating "{source}": error validating data: [{", ".join(missing)}]')
    kind = str(doc.get("kind"))
    if kind.endswith("List") and isinstance(doc.get("items"), list):
        for item in doc["items"]:
            yield from _flatten(source, item)
        return
    yield doc


def read(args: Iterable[str], recursive: bool = False, stdin: IO[str] | None = None,
         verb: str = "create") -> list[Manifest]:
    """Every object named by the `-f` arguments, in order. Raises CommandError (also when
    there is none: `no objects passed to <verb>`)."""
    out: list[Manifest] = []
    for arg in args:
        if arg == "-":
            text = (stdin or sys.stdin).read()
            sources = [(STDIN, text)]
        else:
            sources = []
            for shown, path in _files(arg, recursive):
                try:
                    sources.append((shown, path.read_text()))
                except OSError as e:
                    raise CommandError(f"error reading {shown}: {e.strerror or e}") from None
                except UnicodeDecodeError:
                    raise CommandError(f"error parsing {shown}: the file is not UTF-8 text") from None
        for source, text in sources:
            for doc in parse_documents(source, text):
                out.extend(Manifest(source, obj) for obj in _flatten(source, doc))
    if not out:
        raise CommandError(f"no objects passed to {verb}")
    return out


def resource_of(m: Manifest) -> ResourceType:
    """The served resource of a manifest's apiVersion/kind, or kubectl's "no matches" error."""
    api_version = str(m.obj.get("apiVersion"))
    kind = str(m.obj.get("kind"))
    rt = kinds.by_kind(api_version, kind)
    if rt is None:
        raise CommandError(f'resource mapping not found for name: "{m.name}" namespace: "{m.namespace}" '
                           f'from "{m.source}": no matches for kind "{kind}" in version "{api_version}"')
    return rt


def place(m: Manifest, rt: ResourceType, namespace: str, enforce: bool) -> str | None:
    """The namespace the object goes to (None for cluster-scoped kinds), set in its metadata.

    `enforce` (namespace given with -n): an object naming another namespace is an error,
    as in kubectl.
    """
    meta = m.obj.setdefault("metadata", {})
    if not isinstance(meta, dict):
        raise CommandError(f'error validating "{m.source}": error validating data: metadata must be an object')
    if not rt.namespaced:
        meta.pop("namespace", None)
        return None
    own = meta.get("namespace")
    if own and enforce and own != namespace:
        raise CommandError(f'the namespace from the provided object "{own}" does not match the namespace '
                           f'"{namespace}". You must pass \'--namespace={own}\' to perform this operation.')
    ns = own or namespace
    meta["namespace"] = ns
    return str(ns)
