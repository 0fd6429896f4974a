"""mkubectl's output formatting, pure: tabwriter, tables, yaml/json, jsonpath, -o parsing.

Expected texts were checked against kubectl v1.32 printing the same objects."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from mkube.api.tables import table_for
from mkube.kubectl import jsonpath
from mkube.kubectl.encoding import go_float, go_key_less, to_compact_json, to_json, to_yaml
from mkube.kubectl.errors import CommandError
from mkube.kubectl.printers import (
    ObjectPrinter,
    TableOptions,
    TablePrinter,
    as_list,
    format_cell,
    name_of,
    parse_output,
    render_rows,
)
from mkube.kubectl.tabwriter import TabWriter, tabbed

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def deployment(name: str, ready: int = 0, replicas: int = 2, labels: dict[str, str] | None = None,
               namespace: str = "default", age_s: int = 90) -> dict[str, Any]:
    created = datetime.fromtimestamp(NOW.timestamp() - age_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": created,
                         "labels": labels or {"app": name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": name, "image": "nginx:1.25"}]}}},
            "status": {"readyReplicas": ready, "updatedReplicas": ready, "availableReplicas": ready}}


def table(*objs: dict[str, Any], kind: str = "Deployment") -> dict[str, Any]:
    return table_for(kind, list(objs), NOW, include_object="Metadata")


# ---------------------------------------------------------------- tabwriter

def test_tabwriter_pads_columns_to_widest_cell_plus_padding() -> None:
    tw = TabWriter(minwidth=6, padding=3)
    tw.write("NAME\tREADY\tAGE\nweb\t0/2\t5s\nlonger-name\t1/1\t10m\n")
    assert tw.flush() == ("NAME          READY   AGE\n"
                          "web           0/2     5s\n"
                          "longer-name   1/1     10m\n")


def test_tabwriter_minwidth_and_last_cell_unpadded() -> None:
    tw = TabWriter(minwidth=6, padding=3)
    tw.write("A\tB\nx\ty\n")
    assert tw.flush() == "A     B\nx     y\n"


def test_tabwriter_aligns_per_block_of_consecutive_lines() -> None:
    # describe-style: a line without tabs ends the block, later lines align on their own.
    text = "Name:\tweb\nNamespace:\tdefault\nPod Template:\n  Labels:\tapp=web\n"
    assert tabbed(text) == "Name:       web\nNamespace:  default\nPod Template:\n  Labels:  app=web\n"


def test_tabwriter_continuation_lines_align_under_first_value() -> None:
    assert tabbed("Labels:\ta=1\n\tb=2\nAnnotations:\t<none>\n") == (
        "Labels:       a=1\n              b=2\nAnnotations:  <none>\n")


def test_tabwriter_remembers_widths_between_flushes() -> None:
    tw = TabWriter(minwidth=6, padding=3, remember_widths=True)
    tw.write("NAME\tSTATUS\tAGE\nvery-long-pod-name\tRunning\t1s\n")
    first = tw.flush()
    tw.write("p\tPending\t2s\n")
    assert first.splitlines()[0] == "NAME                 STATUS    AGE"
    assert tw.flush() == "p                    Pending   2s\n"
    tw.reset_widths()
    tw.write("p\tPending\t2s\n")
    assert tw.flush() == "p     Pending   2s\n"


def test_tabwriter_keeps_unterminated_last_line() -> None:
    tw = TabWriter(padding=1)
    tw.write("a\tb\nc")
    assert tw.flush() == "a b\nc"


# ---------------------------------------------------------------- tables

def test_table_like_kubectl_get_deploy() -> None:
    text = TablePrinter(TableOptions()).render(table(deployment("web"), deployment("api", 1, 1, age_s=600)))
    assert text == ("NAME   READY   UP-TO-DATE   AVAILABLE   AGE\n"
                    "web    0/2     0            0           90s\n"
                    "api    1/1     1            1           10m\n")


def test_table_wide_shows_priority_columns() -> None:
    text = TablePrinter(TableOptions(wide=True)).render(table(deployment("web")))
    assert text.splitlines() == [
        "NAME   READY   UP-TO-DATE   AVAILABLE   AGE   CONTAINERS   IMAGES       SELECTOR",
        "web    0/2     0            0           90s   web          nginx:1.25   app=web",
    ]


def test_table_namespace_kind_prefix_and_labels() -> None:
    opts = TableOptions(with_namespace=True, kind_prefix="deployment.apps", show_labels=True,
                        label_columns=("app.kubernetes.io/tier", "app"))
    text = TablePrinter(opts).render(table(deployment("web", namespace="prod",
                                                      labels={"app": "web", "app.kubernetes.io/tier": "fe"})))
    assert text.splitlines() == [
        "NAMESPACE   NAME                  READY   UP-TO-DATE   AVAILABLE   AGE   TIER   APP   LABELS",
        "prod        deployment.apps/web   0/2     0            0           90s   fe     web   "
        "app=web,app.kubernetes.io/tier=fe",
    ]


def test_table_header_once_for_same_columns_and_empty_table_prints_nothing() -> None:
    printer = TablePrinter(TableOptions())
    assert printer.render(table()) == ""
    first = printer.render(table(deployment("web-with-a-long-name")))
    second = printer.render(table(deployment("x")))
    assert first.splitlines()[0].startswith("NAME")
    assert second == "x                      0/2     0            0           90s\n"  # aligned with the header


def test_table_no_headers() -> None:
    assert TablePrinter(TableOptions(no_headers=True)).render(table(deployment("web"))) == (
        "web   0/2   0     0     90s\n")


def test_format_cell_like_go_sprint() -> None:
    assert format_cell(True) == "true"
    assert format_cell(None) == ""
    assert format_cell(3) == "3"
    assert format_cell(2.0) == "2"
    assert format_cell("two\nlines") == "two..."


def test_render_rows() -> None:
    assert render_rows(["CURRENT", "NAME"], [["*", "mkube"]]) == "CURRENT   NAME\n*         mkube\n"


# ---------------------------------------------------------------- yaml / json

CONFIGMAP = {
    "apiVersion": "v1", "kind": "ConfigMap",
    "metadata": {"name": "cm1", "labels": {"a": "y", "b": "yes", "c": "080", "d": "1e3", "e": "null", "g": ""}},
    "data": {"multi": "line1\nline2\n", "multi2": "a\nb", "colon": "a: b", "time": "2026-01-01",
             "num": "12:30", "ver": "1.2.3", "float": "1.5", "uni": "héllo <b>&", "nl": "\n", "amp": "&x",
             "tab": "a\tb", "q": "'x'"},
}

# What kubectl v1.32 printed for this object (go-yaml v2 through sigs.k8s.io/yaml).
CONFIGMAP_YAML = """apiVersion: v1
data:
  amp: '&x'
  colon: 'a: b'
  float: "1.5"
  multi: |
    line1
    line2
  multi2: |-
    a
    b
  nl: |2+

  num: "12:30"
  q: '''x'''
  tab: "a\\tb"
  time: "2026-01-01"
  uni: héllo <b>&
  ver: 1.2.3
kind: ConfigMap
metadata:
  labels:
    a: "y"
    b: "yes"
    c: "080"
    d: "1e3"
    e: "null"
    g: ""
  name: cm1
"""


def test_yaml_matches_kubectl_quoting_and_block_styles() -> None:
    assert to_yaml(CONFIGMAP) == CONFIGMAP_YAML


def test_yaml_long_strings_wrap_at_80_columns() -> None:
    text = to_yaml({"long": "word " * 20})
    assert text.splitlines()[0] == "long: 'word word word word word word word word word word word word word word word"


def test_yaml_key_order_is_go_yaml_natural_order() -> None:
    # runes other than letters sort before letters; digit runs compare as numbers
    assert list(to_yaml({"a10": 1, "a9": 2, "B": 3, "a": 4, "_x": 5}).splitlines()) == [
        "_x: 5", "B: 3", "a: 4", "a9: 2", "a10: 1"]
    assert go_key_less("a9", "a10") and not go_key_less("a10", "a9")


def test_json_like_go_marshal_indent() -> None:
    assert to_json({"b": [1, 2.0], "a": {"x": "<none> & more"}}) == (
        '{\n    "a": {\n        "x": "\\u003cnone\\u003e \\u0026 more"\n    },\n    "b": [\n        1,\n        2\n'
        "    ]\n}")
    assert to_compact_json({"b": 1, "a": {}}) == '{"a":{},"b":1}'


@pytest.mark.parametrize("value,text", [(1.5, "1.5"), (3.0, "3"), (1e6, "1000000"), (1e21, "1e+21"),
                                        (1e-05, "1e-05"), (0.0001, "0.0001"), (-2.5, "-2.5")])
def test_go_float(value: float, text: str) -> None:
    assert go_float(value) == text


# ---------------------------------------------------------------- jsonpath

LIST = {"kind": "List", "items": [
    {"metadata": {"name": "a", "labels": {"app.kubernetes.io/name": "x"}}, "spec": {"replicas": 2},
     "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Other", "status": "False"}]}},
    {"metadata": {"name": "b"}, "spec": {"replicas": 3, "flag": True}},
]}


@pytest.mark.parametrize("template,expected", [
    ("{.items[*].metadata.name}", "a b"),
    ("{.items[0].spec.replicas}", "2"),
    ('{range .items[*]}{.metadata.name}{"\\n"}{end}', "a\nb\n"),
    ('{range .items[*]}{.metadata.name}{"\\t"}{.spec.replicas}{"\\n"}{end}', "a\t2\nb\t3\n"),
    ('{.items[0].status.conditions[?(@.type=="Ready")].status}', "True"),
    ("{.items[?(@.spec.replicas>2)].metadata.name}", "b"),
    ("{.items[-1:].metadata.name}", "b"),
    ("{.items[0,1].spec.replicas}", "2 3"),
    ("{.items[0].metadata.labels.app\\.kubernetes\\.io/name}", "x"),
    ("{.items[0].metadata.labels['app.kubernetes.io/name']}", "x"),
    ("{.items[1].spec}", '{"flag":true,"replicas":3}'),
    ("{.items[1].spec.flag}", "true"),
    ("{.items[0].missing}", ""),
    ("name: {.items[0].metadata.name}!", "name: a!"),
    ("{..name}", "a b"),
    ("{$.kind}", "List"),
])
def test_jsonpath_forms(template: str, expected: str) -> None:
    assert jsonpath.execute(template, LIST) == expected


def test_jsonpath_errors() -> None:
    with pytest.raises(jsonpath.JsonPathError, match="out of bounds"):
        jsonpath.execute("{.items[5]}", LIST)
    with pytest.raises(jsonpath.JsonPathError, match="unclosed range"):
        jsonpath.parse("{range .items[*]}{.a}")
    with pytest.raises(jsonpath.JsonPathError, match="nothing to end"):
        jsonpath.parse("{end}")


def test_jsonpath_find_for_custom_columns() -> None:
    assert jsonpath.find(".spec.replicas", LIST["items"][0]) == [2]
    assert jsonpath.find("metadata.name", LIST["items"][1]) == ["b"]


# ---------------------------------------------------------------- -o and object printers

def test_parse_output() -> None:
    assert parse_output(None).kind == "table"
    assert parse_output("wide").is_table
    assert parse_output("jsonpath={.a}").template == "{.a}"
    assert parse_output("custom-columns=NAME:.metadata.name,R:.spec.replicas").columns == [
        ("NAME", ".metadata.name"), ("R", ".spec.replicas")]
    with pytest.raises(CommandError, match='unable to match a printer suitable for the output format "xml"'):
        parse_output("xml")
    with pytest.raises(CommandError, match="error parsing jsonpath"):
        parse_output("jsonpath={range .x}")


def test_name_of() -> None:
    assert name_of({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}) == \
        "deployment.apps/web"
    assert name_of({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}) == "pod/p"


def test_object_printer_formats() -> None:
    dep = deployment("web")
    assert ObjectPrinter(parse_output("name"), name_of).render(as_list([dep, dep])) == (
        "deployment.apps/web\ndeployment.apps/web\n")
    yaml_printer = ObjectPrinter(parse_output("yaml"), name_of)
    assert not yaml_printer.render({"a": 1}).startswith("---")
    assert yaml_printer.render({"a": 1}) == "---\na: 1\n"
    assert ObjectPrinter(parse_output("jsonpath={.metadata.name}"), name_of).render(dep) == "web"
    cc = ObjectPrinter(parse_output("custom-columns=NAME:.metadata.name,MISSING:.x"), name_of)
    assert cc.render(as_list([dep])) == "NAME   MISSING\nweb    <none>\n"
    assert as_list([]) == {"apiVersion": "v1", "items": [], "kind": "List", "metadata": {"resourceVersion": ""}}
