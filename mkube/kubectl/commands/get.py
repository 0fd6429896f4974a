"""`mkubectl get`: server-side Tables (or yaml/json/name/jsonpath/custom-columns), one or
many kinds, names or `TYPE/NAME`, selectors, every namespace, and `-w` watches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click

from mkube.api.errors import ApiError
from mkube.api.kinds import ResourceType
from mkube.kubectl import fetch, manifests, resources
from mkube.kubectl.context import Kube
from mkube.kubectl.errors import CommandError, ExitError, error_line
from mkube.kubectl.output import Out, err
from mkube.kubectl.printers import (
    ObjectPrinter,
    OutputFormat,
    TableOptions,
    TablePrinter,
    as_list,
    name_of,
    parse_output,
)

Obj = dict[str, Any]


@dataclass(frozen=True)
class Req:
    rt: ResourceType
    name: str | None
    namespace: str | None  # None: every namespace (lists) / cluster-scoped


@dataclass
class GetOptions:
    fmt: OutputFormat
    selector: str | None
    field_selector: str | None
    all_namespaces: bool
    show_labels: bool
    label_columns: tuple[str, ...]
    no_headers: bool
    ignore_not_found: bool


def _requests(kube: Kube, args: tuple[str, ...], filenames: tuple[str, ...], recursive: bool,
              all_namespaces: bool) -> tuple[list[Req], bool, bool]:
    """(requests, several kinds requested, a single object named)."""
    if filenames:
        if args:
            raise CommandError("when paths, URLs, or stdin is provided as input, you may not specify "
                               "resource arguments as well")
        reqs = []
        for m in manifests.read(filenames, recursive, verb="get"):
            rt = manifests.resource_of(m)
            ns = manifests.place(m, rt, kube.namespace, kube.namespace_explicit)
            reqs.append(Req(rt, m.name, ns))
        return reqs, len({r.rt for r in reqs}) > 1, len(reqs) == 1
    targets = resources.parse(args)
    ns = None if all_namespaces else kube.namespace
    reqs = [Req(t.rt, t.name, kube.namespace if t.name is not None else ns) for t in targets.items]
    return reqs, targets.multiple_kinds, targets.single_item


def _table_options(opts: GetOptions, rt: ResourceType, multiple_kinds: bool) -> TableOptions:
    return TableOptions(wide=opts.fmt.kind == "wide", with_namespace=opts.all_namespaces and rt.namespaced,
                        kind_prefix=resources.kind_prefix(rt) if multiple_kinds else "",
                        show_labels=opts.show_labels, label_columns=opts.label_columns,
                        no_headers=opts.no_headers)


def _print_tables(kube: Kube, reqs: list[Req], opts: GetOptions, multiple_kinds: bool, out: Out,
                  errors: list[str]) -> None:
    groups: list[tuple[ResourceType, Obj]] = []
    for req in reqs:
        try:
            table = fetch.get_table(kube.client, req.rt, req.namespace, req.name, opts.selector,
                                    opts.field_selector)
        except ApiError as e:
            if not (e.code == 404 and req.name is not None and opts.ignore_not_found):
                errors.append(error_line(e))
            continue
        if groups and groups[-1][0] == req.rt:
            prev = groups[-1][1]
            prev["rows"] = list(prev.get("rows") or []) + list(table.get("rows") or [])
        else:
            groups.append((req.rt, table))
    separator = False
    for rt, table in groups:
        printer = TablePrinter(_table_options(opts, rt, multiple_kinds))
        text = printer.render(table)
        if text and separator and not opts.no_headers:
            text = "\n" + text
        out.write(text)
        separator = separator or bool(text)


def _print_objects(kube: Kube, reqs: list[Req], opts: GetOptions, single_item: bool, out: Out,
                   errors: list[str]) -> None:
    objs: list[Obj] = []
    for req in reqs:
        try:
            if req.name is not None:
                objs.append(fetch.get_object(kube.client, req.rt, req.name, req.namespace))
            else:
                objs.extend(fetch.list_objects(kube.client, req.rt, req.namespace, opts.selector,
                                               opts.field_selector)[0])
        except ApiError as e:
            if not (e.code == 404 and req.name is not None and opts.ignore_not_found):
                errors.append(error_line(e))
    printer = ObjectPrinter(opts.fmt, name_of)
    if opts.fmt.kind == "name":
        for obj in objs:
            out.write(printer.render(obj))
    elif single_item and len(objs) == 1 and not errors:
        out.write(printer.render(objs[0]))
    elif objs or not errors:
        out.write(printer.render(as_list(objs)))


def _watch(kube: Kube, reqs: list[Req], opts: GetOptions, watch_only: bool, out: Out) -> None:
    if len({r.rt for r in reqs}) != 1 or len(reqs) > 1:
        raise CommandError(f"watch is only supported on individual resources and resource collections, but "
                           f"{len(reqs)} resources were found")
    req = reqs[0]
    rt = req.rt
    field_selector = opts.field_selector
    if req.name is not None:
        field_selector = ",".join(x for x in (f"metadata.name={req.name}", field_selector) if x)
    table_printer = TablePrinter(_table_options(opts, rt, False)) if opts.fmt.is_table else None
    obj_printer = ObjectPrinter(opts.fmt, name_of)
    # The current state first (unless --watch-only), then every change after it.
    if table_printer is not None:
        table = fetch.get_table(kube.client, rt, req.namespace, req.name, opts.selector, opts.field_selector)
        rows = table.get("rows") or []
        rv = str((table.get("metadata") or {}).get("resourceVersion") or "")
        if req.name is not None and rows:
            rv = str(((rows[0].get("object") or {}).get("metadata") or {}).get("resourceVersion") or rv)
        if not watch_only:
            out.write(table_printer.render(table))
    else:
        if req.name is not None:
            current = [fetch.get_object(kube.client, rt, req.name, req.namespace)]
            rv = str(current[0].get("metadata", {}).get("resourceVersion") or "")
        else:
            current, rv = fetch.list_objects(kube.client, rt, req.namespace, opts.selector, opts.field_selector)
        if not watch_only:
            for obj in current:
                out.write(obj_printer.render(obj))
    with kube.client.watch_raw(rt, req.namespace if rt.namespaced else None, resource_version=rv or None,
                               label_selector=opts.selector, field_selector=field_selector) as watch:
        for event in watch:
            if event.type not in ("ADDED", "MODIFIED", "DELETED"):
                continue
            obj = fetch.typed(rt, event.object)
            if table_printer is not None:
                out.write(table_printer.render(fetch.row_table(rt, obj)))
            else:
                out.write(obj_printer.render(obj))


@click.command("get")
@click.argument("args", nargs=-1)
@click.option("-o", "--output", help="yaml|json|wide|name|jsonpath=...|custom-columns=...")
@click.option("-l", "--selector", help="Label selector, e.g. app=web,tier!=db")
@click.option("--field-selector", help="Field selector, e.g. status.phase=Running")
@click.option("-A", "--all-namespaces", is_flag=True, help="List objects of every namespace.")
@click.option("-w", "--watch", is_flag=True, help="After listing, watch for changes.")
@click.option("--watch-only", is_flag=True, help="Watch for changes without listing first.")
@click.option("--show-labels", is_flag=True, help="Add a LABELS column.")
@click.option("-L", "--label-columns", multiple=True, help="Label keys shown as columns.")
@click.option("--no-headers", is_flag=True, help="Leave out the table header.")
@click.option("--ignore-not-found", is_flag=True, help="Named objects that do not exist are no error.")
@click.option("-f", "--filename", multiple=True, help="Files naming the objects to get.")
@click.option("-R", "--recursive", is_flag=True, help="Read directories given with -f recursively.")
@click.pass_obj
def get_command(kube: Kube, args: tuple[str, ...], output: str | None, selector: str | None,
                field_selector: str | None, all_namespaces: bool, watch: bool, watch_only: bool,
                show_labels: bool, label_columns: tuple[str, ...], no_headers: bool, ignore_not_found: bool,
                filename: tuple[str, ...], recursive: bool) -> None:
    """Display one or many resources."""
    opts = GetOptions(fmt=parse_output(output), selector=selector, field_selector=field_selector,
                      all_namespaces=all_namespaces, show_labels=show_labels,
                      label_columns=tuple(c.strip() for cols in label_columns for c in cols.split(",") if c.strip()),
                      no_headers=no_headers, ignore_not_found=ignore_not_found)
    if not args and not filename:
        raise CommandError('You must specify the type of resource to get. Use "mkubectl api-resources" for a '
                           "complete list of supported resources.")
    reqs, multiple_kinds, single_item = _requests(kube, args, filename, recursive, all_namespaces)
    out = Out()
    if watch or watch_only:
        _watch(kube, reqs, opts, watch_only, out)
        return
    errors: list[str] = []
    if opts.fmt.is_table:
        _print_tables(kube, reqs, opts, multiple_kinds, out, errors)
    else:
        _print_objects(kube, reqs, opts, single_item, out, errors)
    for line in errors:
        err(line)
    if errors:
        raise ExitError(1)
    if not out.written and not ignore_not_found:
        if not all_namespaces and all(r.rt.namespaced for r in reqs):
            err(f"No resources found in {kube.namespace} namespace.")
        else:
            err("No resources found")
