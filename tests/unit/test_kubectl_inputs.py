"""mkubectl's input handling, pure: -f files, resource arguments, global flags, durations,
error wording."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from mkube.api.errors import AlreadyExists, Cause, Invalid, NotFound
from mkube.client.errors import ConnectionFailed
from mkube.kubectl import manifests, resources
from mkube.kubectl.errors import CommandError, error_line, with_source
from mkube.kubectl.main import hoist_global_flags
from mkube.kubectl.timeparse import parse_duration

DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
"""
SERVICE = """apiVersion: v1
kind: Service
metadata:
  name: web
"""


# ---------------------------------------------------------------- manifests

def test_read_multi_document_yaml(tmp_path: Path) -> None:
    f = tmp_path / "app.yaml"
    f.write_text(DEPLOY + "---\n" + SERVICE + "---\n")
    got = manifests.read([str(f)])
    assert [(m.source, m.obj["kind"], m.name) for m in got] == [(str(f), "Deployment", "web"),
                                                                 (str(f), "Service", "web")]


def test_read_directory_only_manifest_extensions_and_recursive(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(DEPLOY)
    (tmp_path / "notes.txt").write_text("not a manifest")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "b.json").write_text('{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}')
    assert [m.obj["kind"] for m in manifests.read([str(tmp_path)])] == ["Deployment"]
    assert [m.obj["kind"] for m in manifests.read([str(tmp_path)], recursive=True)] == ["Deployment", "ConfigMap"]


def test_read_stdin_json_stream_and_list_kind() -> None:
    text = ('{"apiVersion": "v1", "kind": "List", "items": ['
            '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}},'
            '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}}]}\n'
            '{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}')
    got = manifests.read(["-"], stdin=io.StringIO(text))
    assert [(m.source, m.name) for m in got] == [("STDIN", "a"), ("STDIN", "b"), ("STDIN", "n")]


def test_missing_path_is_kubectls_error(tmp_path: Path) -> None:
    with pytest.raises(CommandError) as e:
        manifests.read(["nothere.yaml"])
    assert e.value.message == 'the path "nothere.yaml" does not exist'


def test_bad_yaml_names_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  bad: [\n  - oops: : :\n")
    with pytest.raises(CommandError) as e:
        manifests.read([str(f)])
    assert e.value.message.startswith(f"error parsing {f}: error converting YAML to JSON: yaml: line ")
    line = int(e.value.message.split("line ")[1].split(":")[0])
    assert 5 <= line <= 7


def test_bad_json_names_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.json"
    f.write_text('{"apiVersion": "v1",\n "kind": }')
    with pytest.raises(CommandError, match=r"error parsing .*bad.json: json: line 2"):
        manifests.read([str(f)])


def test_missing_kind_and_empty_input(tmp_path: Path) -> None:
    f = tmp_path / "x.yaml"
    f.write_text("metadata:\n  name: x\n")
    with pytest.raises(CommandError, match=r'error validating ".*x.yaml": error validating data: '
                                           r"\[apiVersion not set, kind not set\]"):
        manifests.read([str(f)])
    f.write_text("# nothing\n")
    with pytest.raises(CommandError, match="no objects passed to apply"):
        manifests.read([str(f)], verb="apply")


def test_unknown_kind_and_namespace_placement() -> None:
    m = manifests.Manifest("foo.yaml", {"apiVersion": "v1", "kind": "Foo", "metadata": {"name": "x"}})
    with pytest.raises(CommandError) as e:
        manifests.resource_of(m)
    assert e.value.message == ('resource mapping not found for name: "x" namespace: "" from "foo.yaml": '
                               'no matches for kind "Foo" in version "v1"')
    dep = manifests.Manifest("d.yaml", {"apiVersion": "apps/v1", "kind": "Deployment",
                                        "metadata": {"name": "web", "namespace": "prod"}})
    rt = manifests.resource_of(dep)
    assert manifests.place(dep, rt, "default", enforce=False) == "prod"
    with pytest.raises(CommandError, match="does not match the namespace \"dev\". You must pass '--namespace=prod'"):
        manifests.place(dep, rt, "dev", enforce=True)
    ns = manifests.Manifest("n.yaml", {"apiVersion": "v1", "kind": "Namespace",
                                       "metadata": {"name": "n", "namespace": "zzz"}})
    assert manifests.place(ns, manifests.resource_of(ns), "default", enforce=True) is None
    assert "namespace" not in ns.obj["metadata"]


# ---------------------------------------------------------------- resource arguments

def test_resource_args_short_names_and_lists() -> None:
    t = resources.parse(["deploy,svc"])
    assert [(x.rt.plural, x.name) for x in t.items] == [("deployments", None), ("services", None)]
    assert t.multiple_kinds and not t.single_item
    t = resources.parse(["po", "a", "b"])
    assert [(x.rt.plural, x.name) for x in t.items] == [("pods", "a"), ("pods", "b")]
    assert not t.multiple_kinds and not t.single_item
    assert resources.parse(["deployments.apps", "web"]).single_item
    for short, plural in [("po", "pods"), ("deploy", "deployments"), ("rs", "replicasets"), ("svc", "services"),
                          ("ep", "endpoints"), ("no", "nodes"), ("ns", "namespaces"), ("cm", "configmaps"),
                          ("ev", "events"), ("secret", "secrets")]:
        assert resources.resolve_type(short).plural == plural


def test_resource_args_all_and_type_name_forms() -> None:
    assert [x.rt.plural for x in resources.parse(["all"]).items] == ["pods", "services", "deployments",
                                                                     "replicasets"]
    t = resources.parse(["deploy/web", "svc/web"])
    assert [(x.rt.plural, x.name) for x in t.items] == [("deployments", "web"), ("services", "web")]
    assert t.multiple_kinds
    assert resources.parse(["deploy/web"]).single_item


@pytest.mark.parametrize("args,message", [
    (["foo"], 'the server doesn\'t have a resource type "foo"'),
    (["deploy/web", "svc"], "there is no need to specify a resource type as a separate argument"),
    (["deploy", "svc/web"], "there is no need to specify a resource type as a separate argument"),
    (["deploy,svc", "web"], "you must specify only one resource"),
    ([], "Required resource not specified."),
])
def test_resource_args_errors(args: list[str], message: str) -> None:
    with pytest.raises(CommandError) as e:
        resources.parse(args)
    assert e.value.message.startswith(message)


# ---------------------------------------------------------------- global flags, durations

def test_global_flags_anywhere_before_double_dash() -> None:
    assert hoist_global_flags(["get", "po", "-n", "kube-system", "-o", "wide", "--context=c"]) == [
        "--namespace", "kube-system", "--context=c", "get", "po", "-o", "wide"]
    assert hoist_global_flags(["logs", "p", "-v=6", "-nfoo"]) == ["--v=6", "--namespace=foo", "logs", "p"]
    assert hoist_global_flags(["exec", "p", "--", "ls", "-n", "x"]) == ["exec", "p", "--", "ls", "-n", "x"]
    assert hoist_global_flags(["get", "po", "--insecure-skip-tls-verify", "-s", "http://x"]) == [
        "--insecure-skip-tls-verify", "--server", "http://x", "get", "po"]


@pytest.mark.parametrize("text,seconds", [("0", 0), ("30s", 30), ("5m", 300), ("1h30m", 5400), ("500ms", 0.5),
                                          ("1.5h", 5400)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_parse_duration_rejects_garbage() -> None:
    with pytest.raises(CommandError):
        parse_duration("5 minutes")
    with pytest.raises(CommandError, match="missing unit"):
        parse_duration("5")


# ---------------------------------------------------------------- error wording

def test_error_lines_like_kubectl() -> None:
    assert error_line(NotFound("deployments", "web", group="apps")) == \
        'Error from server (NotFound): deployments.apps "web" not found'
    err = with_source(AlreadyExists("deployments", "web", group="apps"), "creating", "dep.yaml")
    assert error_line(err) == ('Error from server (AlreadyExists): error when creating "dep.yaml": '
                               'deployments.apps "web" already exists')
    invalid = Invalid("ConfigMap", "Bad_Name", [Cause("metadata.name", 'Invalid value: "Bad_Name": not a name')])
    assert error_line(invalid) == 'The ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": not a name'
    two = Invalid("Pod", "p", [Cause("spec.a", "bad"), Cause("spec.b", "worse")])
    assert error_line(two) == 'The Pod "p" is invalid: \n* spec.a: bad\n* spec.b: worse'


def test_connection_errors_like_kubectl() -> None:
    refused = ConnectionFailed("https://127.0.0.1:6443", "[Errno 111] Connection refused")
    assert error_line(refused) == ("The connection to the server 127.0.0.1:6443 was refused - did you specify "
                                   "the right host or port?")
    other = ConnectionFailed("https://k.example", "Name or service not known")
    assert error_line(other) == "Unable to connect to the server: Name or service not known"
