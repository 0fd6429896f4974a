"""Output formats of `get` (and friends): tables, wide, yaml, json, name, jsonpath,
custom-columns.

`TablePrinter` renders server-side Tables (meta.k8s.io/v1) exactly like kubectl's
human-readable printer: upper-case headers, cells separated by at least three spaces
(Go tabwriter, minwidth 6, remembered widths so watch rows stay aligned), wide columns
(priority > 0) only with `-o wide`, a NAMESPACE column with `-A`, `kind.group/` before
names when several kinds are printed, LABELS with `--show-labels`, `-L` label columns.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from mkube.api.selectors import format_labels
from mkube.kubectl import jsonpath
from mkube.kubectl.encoding import go_float, to_json, to_yaml
from mkube.kubectl.errors import CommandError
from mkube.kubectl.tabwriter import TabWriter

Obj = dict[str, Any]
Write = Callable[[str], None]

_ALLOWED = ("custom-columns,custom-columns-file,go-template,go-template-file,json,jsonpath,jsonpath-as-json,"
            "jsonpath-file,name,template,templatefile,wide,yaml")


def table_writer() -> TabWriter:
    """kubectl's printers.GetNewTabWriter settings."""
    return TabWriter(minwidth=6, padding=3, remember_widths=True)


# ---------------------------------------------------------------- output format

@dataclass
class OutputFormat:
    """A parsed `-o` value. `kind` is table, wide, yaml, json, name, jsonpath or custom-columns."""

    kind: str = "table"
    template: str = ""
    columns: list[tuple[str, str]] = field(default_factory=list)

    @property
    def is_table(self) -> bool:
        return self.kind in ("table", "wide")


def parse_output(value: str | None) -> OutputFormat:
    """Parse `-o`. Raises kubectl's "unable to match a printer" error for unknown formats."""
    if not value:
        return OutputFormat()
    name, sep, arg = value.partition("=")
    if name in ("wide", "yaml", "json", "name") and not sep:
        return OutputFormat(name)
    if name == "jsonpath" and sep:
        try:
            jsonpath.parse(arg)
        except jsonpath.JsonPathError as e:
            raise CommandError(f"error parsing jsonpath {arg}, {e}") from None
        return OutputFormat("jsonpath", template=arg)
    if name == "custom-columns" and sep:
        cols: list[tuple[str, str]] = []
        for spec in arg.split(","):
            header, colon, path = spec.partition(":")
            if not colon or not header:
                raise CommandError(f'unexpected custom-columns spec: {spec}, expected <header>:<json-path-expr>')
            cols.append((header, path))
        return OutputFormat("custom-columns", columns=cols)
    raise CommandError(f'unable to match a printer suitable for the output format "{value}", allowed formats '
                       f"are: {_ALLOWED}")


# ---------------------------------------------------------------- objects

def name_of(obj: Obj) -> str:
    """`kind.group/name` of an object (what -o name prints)."""
    api_version = str(obj.get("apiVersion") or "")
    group = api_version.split("/")[0] if "/" in api_version else ""
    kind = str(obj.get("kind") or "").lower()
    name = (obj.get("metadata") or {}).get("name", "")
    return f"{kind}.{group}/{name}" if group else f"{kind}/{name}"


def dry_run_view(obj: Obj) -> Obj:
    """A generated object as kubectl prints it with --dry-run=client: Go structs marshal
    an unset creationTimestamp as null (also in pod templates)."""
    out = copy.deepcopy(obj)
    out.setdefault("metadata", {}).setdefault("creationTimestamp", None)
    template = (out.get("spec") or {}).get("template")
    if isinstance(template, dict):
        template.setdefault("metadata", {}).setdefault("creationTimestamp", None)
    return out


def as_list(items: list[Obj]) -> Obj:
    """What kubectl prints for several objects in yaml/json/jsonpath: a v1 List."""
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}


class ObjectPrinter:
    """yaml / json / name / jsonpath / custom-columns for whole objects.

    `name_of(obj)` gives `kind.group/name` (used by -o name). Successive YAML documents are
    separated by `---`, as kubectl does for watch output.
    """

    def __init__(self, fmt: OutputFormat, name_of: Callable[[Obj], str]) -> None:
        self.fmt = fmt
        self.name_of = name_of
        self._count = 0
        self._tw = table_writer()
        self._header = False
        self._template = jsonpath.parse(fmt.template) if fmt.kind == "jsonpath" else None

    def render(self, obj: Obj) -> str:
        self._count += 1
        kind = self.fmt.kind
        if kind == "yaml":
            return ("---\n" if self._count > 1 else "") + to_yaml(obj)
        if kind == "json":
            return to_json(obj) + "\n"
        if kind == "name":
            items = obj.get("items") if obj.get("kind") == "List" else None
            if isinstance(items, list):
                return "".join(self.name_of(i) + "\n" for i in items)
            return self.name_of(obj) + "\n"
        if kind == "jsonpath":
            assert self._template is not None
            try:
                return jsonpath.execute(self._template, obj)
            except jsonpath.JsonPathError as e:
                raise CommandError(f'error executing jsonpath "{self.fmt.template}": Error executing template: '
                                   f"{e}") from None
        if kind == "custom-columns":
            return self._custom_columns(obj)
        raise CommandError(f"output format {kind} cannot print objects")

    def _custom_columns(self, obj: Obj) -> str:
        items = obj.get("items") if obj.get("kind") == "List" else [obj]
        if not self._header:
            self._tw.write("\t".join(h for h, _ in self.fmt.columns) + "\n")
            self._header = True
        for item in items if isinstance(items, list) else []:
            cells = []
            for _, path in self.fmt.columns:
                try:
                    values = jsonpath.find(path, item)
                except jsonpath.JsonPathError as e:
                    raise CommandError(f"error parsing custom-columns expression {path}: {e}") from None
                cells.append(",".join(jsonpath.format_value(v) for v in values) if values else "<none>")
            self._tw.write("\t".join(cells) + "\n")
        return self._tw.flush()


# ---------------------------------------------------------------- tables

def format_cell(cell: Any) -> str:
    """A table cell as kubectl prints it (Go's fmt.Sprint; strings cut at the first newline)."""
    if cell is None:
        return ""
    if isinstance(cell, str):
        for i, ch in enumerate(cell):
            if ch in "\n\r\f":
                return cell[:i] + "..."
        return cell
    if isinstance(cell, bool):
        return "true" if cell else "false"
    if isinstance(cell, float):
        return go_float(cell)
    if isinstance(cell, int):
        return str(cell)
    return json.dumps(cell, separators=(",", ":"))


def _row_metadata(row: Obj) -> Obj:
    obj = row.get("object")
    if isinstance(obj, dict):
        meta = obj.get("metadata")
        if isinstance(meta, dict):
            return meta
    return {}


@dataclass
class TableOptions:
    wide: bool = False
    with_namespace: bool = False
    kind_prefix: str = ""  # "deployment.apps": names become deployment.apps/web
    show_labels: bool = False
    label_columns: tuple[str, ...] = ()
    no_headers: bool = False


class TablePrinter:
    """kubectl's HumanReadablePrinter for Tables (one per resource kind; see module docstring).

    `render(table)` returns the formatted text of the table's rows (with the header the
    first time rows are printed for these columns).
    """

    def __init__(self, options: TableOptions, writer: TabWriter | None = None) -> None:
        self.options = options
        self.writer = writer or table_writer()
        self._last_columns: list[Obj] | None = None
        self._printed_headers = False

    def render(self, table: Obj) -> str:
        columns = [c for c in table.get("columnDefinitions") or [] if isinstance(c, dict)]
        rows = [r for r in table.get("rows") or [] if isinstance(r, dict)]
        no_headers = self.options.no_headers
        if self._printed_headers and (not columns or columns == self._last_columns):
            no_headers = True
        if not columns:
            columns = self._last_columns or []
        elif columns != self._last_columns:
            self._last_columns = columns
            self._printed_headers = False
        if rows:
            self._printed_headers = True
        self._write(columns, rows, no_headers)
        return self.writer.flush()

    def _write(self, columns: list[Obj], rows: list[Obj], no_headers: bool) -> None:
        if not rows:
            return
        opts = self.options
        shown = [i for i, c in enumerate(columns) if opts.wide or not c.get("priority")]
        name_col = next((i for i, c in enumerate(columns) if c.get("format") == "name"), -1)
        if not no_headers:
            headers = [str(columns[i].get("name", "")).upper() for i in shown]
            if opts.with_namespace:
                headers.insert(0, "NAMESPACE")
            headers += [label.rsplit("/", 1)[-1].upper() for label in opts.label_columns]
            if opts.show_labels:
                headers.append("LABELS")
            self.writer.write("\t".join(headers) + "\n")
        for row in rows:
            cells = list(row.get("cells") or [])
            meta = _row_metadata(row)
            out: list[str] = []
            if opts.with_namespace:
                out.append(str(meta.get("namespace") or ""))
            for i in shown:
                text = format_cell(cells[i]) if i < len(cells) else ""
                if i == name_col and opts.kind_prefix:
                    text = f"{opts.kind_prefix}/{text}"
                out.append(text)
            raw_labels = meta.get("labels")
            labels: dict[str, Any] = raw_labels if isinstance(raw_labels, dict) else {}
            out += [str(labels.get(label, "")) for label in opts.label_columns]
            if opts.show_labels:
                out.append(format_labels(labels))
            self.writer.write("\t".join(out) + "\n")


def render_rows(headers: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    """A plain kubectl-style table (used by api-resources, config get-contexts ...)."""
    tw = table_writer()
    tw.write("\t".join(headers) + "\n")
    for row in rows:
        tw.write("\t".join(row) + "\n")
    return tw.flush()
