"""mkubectl against a real API server (no kubelet): what a user types and what they see.

The main flows run `mkubectl` as a real subprocess; the rest call `mkube.kubectl.main.run`
in-process (same code path from the argument list on, output captured) for speed.

The fixtures work on the session's shared API server, in a fresh namespace of the test
(the kubeconfig's namespace and the client's default); a test that asks for `api_server`
(it lists across all namespaces) gets them on that private server, in "default".
"""

from __future__ import annotations

import io
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from mkube.client import Client
from mkube.client.kubeconfig import write_kubeconfig
from mkube.kubectl.main import run
from tests.fixtures.apiserver import REPO, ApiServerProcess, free_port

APP = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 80
"""
AGE = r"\d+[smhd]"


@dataclass
class Result:
    code: int
    out: str
    err: str


Kubectl = Callable[..., Result]


@pytest.fixture
def target(request: pytest.FixtureRequest) -> tuple[ApiServerProcess, str | None]:
    """(server, namespace) of the fixtures below: the test's own `api_server` and no namespace
    ("default") if the test asks for one, else the shared server and the test's `namespace`."""
    if "api_server" in request.fixturenames:
        return request.getfixturevalue("api_server"), None
    return request.getfixturevalue("shared_api_server"), request.getfixturevalue("namespace")


@pytest.fixture
def kubeconfig(target: tuple[ApiServerProcess, str | None], tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> Path:
    server, namespace = target
    path = write_kubeconfig(tmp_path / "kubeconfig.yaml", server.url, namespace=namespace)
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path


@pytest.fixture
def client(target: tuple[ApiServerProcess, str | None]) -> Iterator[Client]:
    server, namespace = target
    with Client(server.url, namespace=namespace or "default") as c:
        yield c  # type: ignore[misc]


@pytest.fixture
def kubectl(kubeconfig: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Kubectl:
    """mkubectl in-process: kubectl("get", "po") -> Result(code, stdout, stderr)."""

    def invoke(*args: str, stdin: str | None = None) -> Result:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        capsys.readouterr()
        code = run(list(args))
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return Result(code, out, err)

    return invoke


def mkubectl(kubeconfig: Path, *args: str, stdin: str | None = None, timeout: float = 60) -> Result:
    """mkubectl as a real process (`python -m mkube.kubectl.main`, what the script runs)."""
    env = dict(os.environ, KUBECONFIG=str(kubeconfig))
    p = subprocess.run([sys.executable, "-m", "mkube.kubectl.main", *args], cwd=REPO, env=env, input=stdin,
                       capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in p.stderr
    return Result(p.returncode, p.stdout, p.stderr)


def lines(text: str) -> list[str]:
    return text.splitlines()


# ---------------------------------------------------------------- main flows, real processes

def test_create_get_describe_delete_as_a_user_would(kubeconfig: Path, namespace: str, tmp_path: Path) -> None:
    app = tmp_path / "app.yaml"
    app.write_text(APP)
    r = mkubectl(kubeconfig, "create", "-f", str(app))
    assert (r.code, r.out, r.err) == (0, "deployment.apps/web created\nservice/web created\n", "")

    r = mkubectl(kubeconfig, "create", "-f", str(app))
    assert r.code == 1 and r.out == ""
    assert lines(r.err) == [
        f'Error from server (AlreadyExists): error when creating "{app}": deployments.apps "web" already exists',
        f'Error from server (AlreadyExists): error when creating "{app}": services "web" already exists',
    ]

    r = mkubectl(kubeconfig, "get", "deploy,svc")
    assert r.code == 0 and r.err == ""
    out = lines(r.out)
    assert out[0] == "NAME                  READY   UP-TO-DATE   AVAILABLE   AGE"
    assert re.fullmatch(rf"deployment\.apps/web   0/2     0            0           {AGE}\s*", out[1])
    assert out[2] == ""
    assert out[3].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    web = [row for row in out[4:] if row.startswith("service/web ")]
    assert len(web) == 1 and "80/TCP" in web[0]

    r = mkubectl(kubeconfig, "describe", "deployment", "web")
    assert r.code == 0
    assert re.search(r"^Name:\s+web$", r.out, re.M) and re.search(rf"^Namespace:\s+{namespace}$", r.out, re.M)
    assert re.search(r"^Replicas:\s+2 desired \| ", r.out, re.M)
    assert re.search(r"^    Image:\s+nginx:1.25$", r.out, re.M)
    assert lines(r.out)[-1].startswith("Events:")

    r = mkubectl(kubeconfig, "delete", "-f", str(app))
    assert (r.code, r.out, r.err) == (0, 'deployment.apps "web" deleted\nservice "web" deleted\n', "")
    r = mkubectl(kubeconfig, "get", "deploy")
    assert (r.code, r.out, r.err) == (0, "", f"No resources found in {namespace} namespace.\n")


def test_errors_are_one_line_like_kubectl(kubeconfig: Path, tmp_path: Path) -> None:
    r = mkubectl(kubeconfig, "create", "-f", "missing.yaml")
    assert (r.code, r.err) == (1, 'error: the path "missing.yaml" does not exist\n')

    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels: {a: b\ndata: {}\n")
    r = mkubectl(kubeconfig, "apply", "-f", str(bad))
    assert r.code == 1 and len(lines(r.err)) == 1
    assert re.fullmatch(rf"error: error parsing {re.escape(str(bad))}: error converting YAML to JSON: yaml: "
                        r"line [56]: .+\n", r.err)

    r = mkubectl(kubeconfig, "get", "foo")
    assert (r.code, r.err) == (1, 'error: the server doesn\'t have a resource type "foo"\n')

    unknown = tmp_path / "foo.yaml"
    unknown.write_text("apiVersion: v1\nkind: Foo\nmetadata:\n  name: x\n")
    r = mkubectl(kubeconfig, "create", "-f", str(unknown))
    assert r.code == 1
    assert r.err == (f'error: resource mapping not found for name: "x" namespace: "" from "{unknown}": '
                     f'no matches for kind "Foo" in version "v1"\n')

    r = mkubectl(kubeconfig, "get", "deploy", "nope")
    assert (r.code, r.err) == (1, 'Error from server (NotFound): deployments.apps "nope" not found\n')

    port = free_port()
    r = mkubectl(kubeconfig, "-s", f"http://127.0.0.1:{port}", "get", "pods")
    assert (r.code, r.err) == (1, f"The connection to the server 127.0.0.1:{port} was refused - did you "
                                  f"specify the right host or port?\n")

    r = mkubectl(kubeconfig, "get", "pods", "--bogus")
    assert r.code == 1 and r.err.startswith("error: unknown flag: --bogus\n")


def test_more_errors(kubectl: Kubectl, tmp_path: Path) -> None:
    r = kubectl("describe", "svc/nope")
    assert (r.code, r.out, r.err) == (1, "", 'Error from server (NotFound): services "nope" not found\n')
    r = kubectl("delete", "pod", "nope")
    assert (r.code, r.out, r.err) == (1, "", 'Error from server (NotFound): pods "nope" not found\n')
    r = kubectl("scale", "deploy", "nope", "--replicas=1")
    assert (r.code, r.err) == (1, 'Error from server (NotFound): deployments.apps "nope" not found\n')
    invalid = tmp_path / "invalid.yaml"
    invalid.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n")
    r = kubectl("create", "-f", str(invalid))
    assert r.code == 1 and r.err.startswith('The ConfigMap "Bad_Name" is invalid: metadata.name: ')
    assert len(lines(r.err)) == 1
    r = kubectl("get")
    assert r.code == 1 and r.err.startswith("error: You must specify the type of resource to get.")
    r = kubectl("frobnicate")
    assert (r.code, r.err) == (1, 'error: unknown command "frobnicate" for "mkubectl"\n')
    r = kubectl("get", "po", "-o", "jsonpath={.items[3]}")
    assert (r.code, r.err) == (1, 'error: error executing jsonpath "{.items[3]}": Error executing template: '
                                  "array index out of bounds: index 3, length 0\n")


def test_conflict_on_stale_resource_version(kubectl: Kubectl, tmp_path: Path) -> None:
    assert kubectl("create", "configmap", "c", "--from-literal=a=1").out == "configmap/c created\n"
    stale = kubectl("get", "cm", "c", "-o", "yaml").out
    f = tmp_path / "c.yaml"
    f.write_text(stale.replace("a: \"1\"", "a: \"2\""))
    assert kubectl("replace", "-f", str(f)).out == "configmap/c replaced\n"
    f.write_text(stale.replace("a: \"1\"", "a: \"3\""))
    r = kubectl("replace", "-f", str(f))
    assert r.code == 1
    assert r.err == (f'Error from server (Conflict): error when replacing "{f}": Operation cannot be fulfilled '
                     f'on configmaps "c": the object has been modified; please apply your changes to the latest '
                     f"version and try again\n")


def test_get_watch_streams_rows(kubeconfig: Path, client: Client, namespace: str) -> None:
    env = dict(os.environ, KUBECONFIG=str(kubeconfig))
    proc = subprocess.Popen([sys.executable, "-m", "mkube.kubectl.main", "get", "configmaps", "--watch"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    got: queue.Queue[str] = queue.Queue()

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            got.put(line.rstrip("\n"))

    threading.Thread(target=reader, daemon=True).start()

    def next_line() -> str:
        return got.get(timeout=20)

    try:
        time.sleep(1.5)  # the watch is open once the (empty) list is printed; give it time to start
        deadline = time.monotonic() + 20
        while True:  # create until the watch has seen one (it may start after the first create)
            client.create_raw("configmaps", {"metadata": {"name": f"w{int(time.monotonic() * 1000)}"},
                                             "data": {"a": "1"}}, namespace)
            try:
                header = got.get(timeout=2)
                break
            except queue.Empty:
                assert time.monotonic() < deadline, "the watch printed nothing"
        assert header.split() == ["NAME", "DATA", "AGE"]
        row = next_line()
        assert re.fullmatch(rf"w\d+\s+1\s+{AGE}", row)
        client.create_raw("configmaps", {"metadata": {"name": "watched-longer-name"}}, namespace)
        later = next_line()
        while not later.startswith("watched-longer-name"):
            later = next_line()
        assert re.fullmatch(rf"watched-longer-name\s+0\s+{AGE}", later)
    finally:
        proc.kill()
        proc.wait(10)


def test_secure_server_through_the_mkube_kubeconfig(make_api_server: Callable[..., ApiServerProcess],
                                                   tmp_path: Path) -> None:
    """HTTPS with the server's CA and its admin token, found at ~/.mkube/kubeconfig.yaml when
    neither $KUBECONFIG nor ~/.kube/config exists (where `mkube server` writes it)."""
    server = make_api_server(secure=True)
    home = tmp_path / "home"
    write_kubeconfig(home / ".mkube" / "kubeconfig.yaml", server.url, token=server.admin_token,
                     ca_data=server.ca_file.read_bytes())
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["HOME"] = str(home)

    def mk(*args: str) -> Result:
        p = subprocess.run([sys.executable, "-m", "mkube.kubectl.main", *args], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=60)
        assert "Traceback" not in p.stderr
        return Result(p.returncode, p.stdout, p.stderr)

    r = mk("get", "ns", "default", "-o", "name")
    assert (r.code, r.out, r.err) == (0, "namespace/default\n", "")
    r = mk("--token", "wrong", "get", "ns")
    assert (r.code, r.err) == (1, "error: You must be logged in to the server (Unauthorized)\n")
    write_kubeconfig(home / ".mkube" / "kubeconfig.yaml", server.url, token=server.admin_token)  # no CA
    r = mk("get", "ns")
    assert r.code == 1 and r.err.startswith("Unable to connect to the server: ") and len(lines(r.err)) == 1
    assert mk("--insecure-skip-tls-verify", "get", "ns", "default", "-o", "name").out == "namespace/default\n"


# ---------------------------------------------------------------- create / apply

def test_create_from_directory_recursive_and_stdin(kubectl: Kubectl, namespace: str, tmp_path: Path) -> None:
    team = f"{namespace}-team"  # namespaces are cluster-wide: one no other test makes
    tmp_path = tmp_path / "manifests"
    tmp_path.mkdir()
    (tmp_path / "a.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "b.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": team}}]}))
    assert kubectl("create", "-f", str(tmp_path)).out == "configmap/a created\n"
    assert kubectl("create", "-R", "-f", str(sub)).out == f"configmap/b created\nnamespace/{team} created\n"
    r = kubectl("create", "-f", "-", "-n", team,
                stdin="apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n---\n")
    assert (r.code, r.out) == (0, "configmap/c created\n")
    assert kubectl("get", "cm", "c", "-n", team, "-o", "jsonpath={.metadata.namespace}").out == team
    r = kubectl("create", "-f", "-", "-n", team,
                stdin="apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: d\n  namespace: other\n")
    assert r.code == 1 and f"does not match the namespace \"{team}\"" in r.err


def test_apply_creates_configures_and_prunes_like_kubectl(kubectl: Kubectl, client: Client, namespace: str,
                                                         tmp_path: Path) -> None:
    f = tmp_path / "cm.yaml"
    f.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  labels: {x: y}\ndata:\n  a: '1'\n"
                 "  b: '2'\n")
    assert kubectl("apply", "-f", str(f)).out == "configmap/c created\n"
    assert kubectl("apply", "-f", str(f)).out == "configmap/c unchanged\n"
    client.patch_raw("configmaps", "c", {"metadata": {"labels": {"added-by": "someone-else"}}}, namespace)
    f.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  labels: {x: y}\ndata:\n  a: changed\n")
    assert kubectl("apply", "-f", str(f)).out == "configmap/c configured\n"
    live = client.get_raw("configmaps", "c", namespace)
    assert live["data"] == {"a": "changed"}  # b was dropped from the manifest: removed
    assert live["metadata"]["labels"] == {"x": "y", "added-by": "someone-else"}  # others' changes kept
    annotation = live["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    assert json.loads(annotation)["data"] == {"a": "changed"}


def test_apply_strategic_merge_on_containers(kubectl: Kubectl, client: Client, namespace: str,
                                            tmp_path: Path) -> None:
    f = tmp_path / "app.yaml"
    f.write_text(APP)
    r = kubectl("apply", "-f", str(f))
    assert r.out == "deployment.apps/web created\nservice/web created\n"
    # someone adds a container; the manifest then changes the image and drops the port
    client.patch_raw("deployments", "web", {"spec": {"template": {"spec": {"containers": [
        {"name": "sidecar", "image": "busybox"}]}}}}, namespace, patch_type="strategic")
    f.write_text(APP.replace("nginx:1.25", "nginx:1.26").replace("        ports:\n        - containerPort: 80\n",
                                                                 ""))
    r = kubectl("apply", "-f", str(f))
    assert r.out == "deployment.apps/web configured\nservice/web unchanged\n"
    containers = client.get_raw("deployments", "web", namespace)["spec"]["template"]["spec"]["containers"]
    by_name = {c["name"]: c for c in containers}
    assert by_name["web"]["image"] == "nginx:1.26" and "ports" not in by_name["web"]
    assert by_name["sidecar"]["image"] == "busybox"


def test_apply_over_created_object_warns_and_patches(kubectl: Kubectl, tmp_path: Path) -> None:
    f = tmp_path / "cm.yaml"
    f.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: '1'\n")
    assert kubectl("create", "-f", str(f)).code == 0
    r = kubectl("apply", "-f", str(f))
    assert r.out == "configmap/c configured\n"
    assert r.err.startswith("Warning: resource configmaps/c is missing the "
                            "kubectl.kubernetes.io/last-applied-configuration annotation")
    assert kubectl("apply", "-f", str(f)).out == "configmap/c unchanged\n"


# ---------------------------------------------------------------- get

def _deploy(client: Client, name: str, namespace: str | None = None, replicas: int = 1,
            labels: dict[str, str] | None = None) -> dict[str, Any]:
    body = yaml.safe_load(APP.split("---")[0])
    body["metadata"] = {"name": name, "labels": labels or {"app": name}}
    body["spec"]["replicas"] = replicas
    body["spec"]["selector"] = {"matchLabels": {"app": name}}
    body["spec"]["template"]["metadata"]["labels"] = {"app": name}
    return client.create_raw("deployments", body, namespace)


def test_get_output_formats(kubectl: Kubectl, client: Client) -> None:
    _deploy(client, "web", replicas=3)
    _deploy(client, "api", labels={"app": "api", "tier": "backend"})

    single = kubectl("get", "deploy", "web", "-o", "yaml").out
    assert single.startswith("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n")
    assert "  replicas: 3\n" in single
    many = kubectl("get", "deploy", "-o", "yaml").out
    assert many.startswith("apiVersion: v1\nitems:\n- apiVersion: apps/v1\n  kind: Deployment\n")
    assert many.endswith("kind: List\nmetadata:\n  resourceVersion: \"\"\n")
    doc = json.loads(kubectl("get", "deploy", "-o", "json").out)
    assert doc["kind"] == "List" and [i["metadata"]["name"] for i in doc["items"]] == ["api", "web"]
    assert kubectl("get", "deploy", "-o", "name").out == "deployment.apps/api\ndeployment.apps/web\n"
    assert kubectl("get", "deploy", "-o", "jsonpath={.items[*].metadata.name}").out == "api web"
    assert kubectl("get", "deploy", "web", "-o", "jsonpath={.spec.replicas}").out == "3"
    assert kubectl("get", "deploy", "-o",
                   'jsonpath={range .items[*]}{.metadata.name}{"\\n"}{end}').out == "api\nweb\n"
    assert kubectl("get", "deploy", "-o", "custom-columns=NAME:.metadata.name,REPLICAS:.spec.replicas").out == (
        "NAME   REPLICAS\napi    1\nweb    3\n")
    assert kubectl("get", "deploy", "-l", "tier=backend", "-o", "name").out == "deployment.apps/api\n"
    assert kubectl("get", "deploy", "--field-selector", "metadata.name=web", "-o", "name").out == \
        "deployment.apps/web\n"

    wide = lines(kubectl("get", "deploy", "-o", "wide").out)
    assert wide[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert wide[2].split()[-3:] == ["web", "nginx:1.25", "app=web"]
    labelled = lines(kubectl("get", "deploy", "--show-labels").out)
    assert labelled[0].endswith("AGE   LABELS")
    assert labelled[1].endswith("app=api,tier=backend")
    assert lines(kubectl("get", "deploy", "-L", "tier").out)[1].split()[-1] == "backend"

    r = kubectl("get", "deploy", "nope", "web")
    assert r.code == 1 and r.err == 'Error from server (NotFound): deployments.apps "nope" not found\n'
    assert lines(r.out)[1].startswith("web ")
    assert kubectl("get", "deploy", "nope", "--ignore-not-found") == Result(0, "", "")
    r = kubectl("get", "deploy", "-o", "xml")
    assert r.code == 1 and r.err.startswith('error: unable to match a printer suitable for the output format "xml"')


def test_get_kinds_namespaces_and_type_name_forms(kubectl: Kubectl, client: Client,
                                                  api_server: ApiServerProcess) -> None:
    """Lists across all namespaces: on a private server (see `target`)."""
    client.create_raw("namespaces", {"metadata": {"name": "other"}})
    _deploy(client, "web")
    _deploy(client, "far", namespace="other")
    client.create_raw("services", {"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"},
                                                                        "ports": [{"port": 80}]}}, "default")
    out = [row for row in lines(kubectl("get", "all").out) if not row.startswith("service/kubernetes ")]
    assert [row.split()[0] if row else "" for row in out] == ["NAME", "service/web", "", "NAME",
                                                              "deployment.apps/web"]
    table = lines(kubectl("get", "deploy", "-A").out)
    assert table[0].startswith("NAMESPACE   NAME   READY")
    assert [row.split()[:2] for row in table[1:]] == [["default", "web"], ["other", "far"]]
    assert [row.split()[0] for row in lines(kubectl("get", "deploy/web", "svc/web").out) if row] == [
        "NAME", "deployment.apps/web", "NAME", "service/web"]
    assert lines(kubectl("get", "deploy/web").out)[1].startswith("web ")
    assert lines(kubectl("get", "deployments.apps", "far", "-n", "other").out)[1].startswith("far ")
    assert kubectl("get", "ns", "other", "-o", "name").out == "namespace/other\n"
    assert kubectl("get", "po").err == "No resources found in default namespace.\n"
    assert kubectl("get", "po", "-A").err == "No resources found\n"
    r = kubectl("get", "deploy,svc", "web")
    assert (r.code, r.err) == (1, "error: you must specify only one resource\n")


# ---------------------------------------------------------------- describe

def _event(client: Client, name: str, obj: dict[str, Any], reason: str, message: str, kind: str) -> None:
    meta = obj["metadata"]
    client.create_raw("events", {
        "metadata": {"name": name},
        "involvedObject": {"kind": kind, "name": meta["name"], "namespace": meta.get("namespace", ""),
                           "uid": meta["uid"]},
        "reason": reason, "message": message, "type": "Normal", "count": 1,
        "source": {"component": "deployment-controller"},
        "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z"}, meta["namespace"])


def test_describe_shows_kind_specific_details_and_events(kubectl: Kubectl, client: Client, namespace: str) -> None:
    node_name = f"{namespace}-node1"  # nodes are cluster-wide: one no other test makes
    dep = _deploy(client, "web", replicas=2)
    other = _deploy(client, "other")
    _event(client, "web.1", dep, "ScalingReplicaSet", "Scaled up replica set web-abc to 2", "Deployment")
    _event(client, "other.1", other, "ScalingReplicaSet", "Scaled up replica set other-x to 1", "Deployment")
    text = kubectl("describe", "deploy", "web").out
    assert re.search(r"^StrategyType:", text, re.M) and re.search(r"^Pod Template:$", text, re.M)
    events = text[text.index("Events:"):]
    assert lines(events)[1].split() == ["Type", "Reason", "Age", "From", "Message"]
    assert re.search(r"Normal\s+ScalingReplicaSet\s+\S+\s+deployment-controller\s+Scaled up replica set web-abc "
                     r"to 2", events)
    assert "other-x" not in events

    client.create_raw("nodes", {"metadata": {"name": node_name, "labels": {"node-role.kubernetes.io/worker": ""}},
                                "spec": {"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]},
                                "status": {"capacity": {"cpu": "4", "memory": "8Gi"},
                                           "allocatable": {"cpu": "4", "memory": "8Gi"},
                                           "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]}})
    client.create_raw("pods", {"metadata": {"name": "p1", "labels": {"app": "web"}},
                               "spec": {"nodeName": node_name, "containers": [
                                   {"name": "c", "image": "busybox",
                                    "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}]}}, namespace)
    node = kubectl("describe", "node", node_name).out
    assert re.search(r"^Roles:\s+worker$", node, re.M)
    assert re.search(r"^Taints:\s+dedicated=db:NoSchedule$", node, re.M)
    assert re.search(r"^  InternalIP:\s+10.0.0.1$", node, re.M)
    assert re.search(r"^Non-terminated Pods:\s+\(1 in total\)$", node, re.M)
    assert re.search(rf"^  {namespace}\s+p1\s+500m \(12%\)\s+0 \(0%\)\s+1Gi \(12%\)\s+0 \(0%\)\s+" + AGE, node, re.M)
    assert re.search(r"^  cpu\s+500m \(12%\)\s+0 \(0%\)$", node, re.M)

    pod = kubectl("describe", "pod", "p1").out
    assert re.search(rf"^Node:\s+{node_name}/$", pod, re.M) and re.search(r"^QoS Class:\s+Burstable$", pod, re.M)
    client.create_raw("services", {"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"},
                                                                        "ports": [{"port": 80, "targetPort": 8080}]}},
                      namespace)
    client.create_raw("endpoints", {"metadata": {"name": "web"}, "subsets": [
        {"addresses": [{"ip": "10.1.0.1"}, {"ip": "10.1.0.2"}], "ports": [{"port": 8080}]}]}, namespace)
    svc = kubectl("describe", "svc", "web").out
    assert re.search(r"^Selector:\s+app=web$", svc, re.M)
    assert re.search(r"^Endpoints:\s+10.1.0.1:8080,10.1.0.2:8080$", svc, re.M)
    assert re.search(r"^Status:\s+Active$", kubectl("describe", "ns", "default").out, re.M)

    prefixed = kubectl("describe", "deploy", "o").out  # no exact name: kubectl matches names by prefix
    assert re.match(r"Name:\s+other\n", prefixed) and "\nName:" not in prefixed
    both = kubectl("describe", "deploy").out
    assert re.match(r"Name:\s+other\n", both)
    assert re.search(r"\n\n\nName:\s+web\n", both)  # objects separated by two blank lines, as kubectl


# ---------------------------------------------------------------- delete

def test_delete_forms_and_waiting(kubectl: Kubectl, client: Client, namespace: str) -> None:
    for name in ("a", "b", "c"):
        client.create_raw("configmaps", {"metadata": {"name": name, "labels": {"group": "x" if name != "c" else "y"}}},
                          namespace)
    assert kubectl("delete", "cm", "a").out == 'configmap "a" deleted\n'
    assert kubectl("delete", "cm", "-l", "group=x").out == 'configmap "b" deleted\n'
    assert kubectl("delete", "cm", "-l", "group=x").out == "No resources found\n"
    assert kubectl("delete", "cm/c", "cm/c", "--ignore-not-found").out == 'configmap "c" deleted\n'
    r = kubectl("delete", "cm")
    assert (r.code, r.err) == (1, "error: resource(s) were provided, but no name was specified\n")

    # A pod on a node is deleted gracefully: it stays (Terminating) until its kubelet confirms.
    client.create_raw("pods", {"metadata": {"name": "bound"},
                               "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "x"}]}}, namespace)
    started = time.monotonic()
    r = kubectl("delete", "pod", "bound", "--timeout=1s")
    assert r.out == 'pod "bound" deleted\n'
    assert (r.code, r.err) == (1, "error: timed out waiting for the condition on pods/bound\n")
    assert 0.9 < time.monotonic() - started < 15
    r = kubectl("delete", "pod", "bound", "--wait=false")
    assert (r.code, r.out) == (0, 'pod "bound" deleted\n')
    r = kubectl("delete", "pod", "bound", "--force", "--grace-period=0")
    assert r.out == 'pod "bound" force deleted\n'
    assert r.err.startswith("Warning: Immediate deletion does not wait for confirmation")
    assert kubectl("get", "pods").err == f"No resources found in {namespace} namespace.\n"
    for name in ("d", "e"):
        client.create_raw("configmaps", {"metadata": {"name": name}}, namespace)
    assert kubectl("delete", "cm", "--all").out == 'configmap "d" deleted\nconfigmap "e" deleted\n'


# ---------------------------------------------------------------- scale, expose, run

def test_scale_expose_run(kubectl: Kubectl, client: Client, namespace: str) -> None:
    _deploy(client, "web", replicas=1)
    assert kubectl("scale", "deploy/web", "--replicas=4").out == "deployment.apps/web scaled\n"
    assert client.get_raw("deployments", "web", namespace)["spec"]["replicas"] == 4
    r = kubectl("scale", "deployment", "web", "--replicas=2", "--current-replicas=3")
    assert (r.code, r.err) == (1, "error: Expected replicas to be 3, was 4\n")

    assert kubectl("expose", "deployment", "web", "--port=8080", "--target-port=80", "--type=NodePort").out == \
        "service/web exposed\n"
    svc = client.get_raw("services", "web", namespace)
    assert svc["spec"]["selector"] == {"app": "web"}
    assert svc["spec"]["type"] == "NodePort"
    assert [(p["port"], p["targetPort"], p["protocol"]) for p in svc["spec"]["ports"]] == [(8080, 80, "TCP")]
    assert kubectl("expose", "svc", "web", "--name=web-again").out == "service/web-again exposed\n"
    assert client.get_raw("services", "web-again", namespace)["spec"]["ports"][0]["port"] == 8080
    r = kubectl("expose", "deploy", "web")
    assert r.code == 1 and r.err == 'Error from server (AlreadyExists): services "web" already exists\n'

    r = kubectl("run", "box", "--image=busybox", "--port=80", "--env=A=1", "--restart=Never", "--", "sleep", "60")
    assert r.out == "pod/box created\n"
    pod = client.get_raw("pods", "box", namespace)
    assert pod["metadata"]["labels"] == {"run": "box"}
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["containers"][0]["args"] == ["sleep", "60"]
    assert kubectl("expose", "pod", "box").out == "service/box exposed\n"
    assert client.get_raw("services", "box", namespace)["spec"]["selector"] == {"run": "box"}


# ---------------------------------------------------------------- rollout

def _rs(client: Client, dep: dict[str, Any], revision: int, image: str, cause: str = "") -> None:
    annotations = {"deployment.kubernetes.io/revision": str(revision)}
    if cause:
        annotations["kubernetes.io/change-cause"] = cause
    labels = {"app": "web", "pod-template-hash": f"h{revision}"}
    client.create_raw("replicasets", {
        "metadata": {"name": f"web-h{revision}", "labels": labels, "annotations": annotations,
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                          "uid": dep["metadata"]["uid"], "controller": True}]},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "web", "image": image}]}}}}, dep["metadata"]["namespace"])


def test_rollout_history_undo_pause_resume_restart(kubectl: Kubectl, client: Client, namespace: str) -> None:
    dep = _deploy(client, "web")
    assert kubectl("rollout", "history", "deploy/web").out == "deployment.apps/web \nNo rollout history found.\n"
    _rs(client, dep, 1, "nginx:1.24")
    _rs(client, dep, 2, "nginx:1.25", cause="kubectl set image deploy/web web=nginx:1.25")
    assert kubectl("rollout", "history", "deployment", "web").out == (
        "deployment.apps/web \nREVISION  CHANGE-CAUSE\n1         <none>\n"
        "2         kubectl set image deploy/web web=nginx:1.25\n\n")
    rev1 = kubectl("rollout", "history", "deploy/web", "--revision=1").out
    assert rev1.startswith("deployment.apps/web with revision #1\nPod Template:\n")
    assert "\tnginx:1.24" in rev1

    r = kubectl("rollout", "undo", "deploy/web")  # current template (nginx:1.25) is revision 2: back to 1
    assert r.out == "deployment.apps/web rolled back\n"
    template = client.get_raw("deployments", "web", namespace)["spec"]["template"]
    assert template["spec"]["containers"][0]["image"] == "nginx:1.24"
    assert template["metadata"]["labels"] == {"app": "web"}  # pod-template-hash dropped, like kubectl
    assert kubectl("rollout", "undo", "deploy/web", "--to-revision=1").out == (
        "deployment.apps/web skipped rollback (current template already matches revision 1)\n")
    r = kubectl("rollout", "undo", "deploy/web", "--to-revision=9")
    assert (r.code, r.err) == (1, "error: unable to find specified revision 9 in history\n")

    assert kubectl("rollout", "pause", "deploy/web").out == "deployment.apps/web paused\n"
    assert client.get_raw("deployments", "web", namespace)["spec"]["paused"] is True
    r = kubectl("rollout", "pause", "deploy/web")
    assert (r.code, r.err) == (1, 'error: deployments.apps "web" is already paused\n')
    r = kubectl("rollout", "undo", "deploy/web")
    assert r.code == 1 and "you cannot rollback a paused deployment" in r.err
    assert kubectl("rollout", "resume", "deploy/web").out == "deployment.apps/web resumed\n"
    assert not client.get_raw("deployments", "web", namespace)["spec"].get("paused")
    assert kubectl("rollout", "restart", "deploy/web").out == "deployment.apps/web restarted\n"
    annotations = client.get_raw("deployments", "web", namespace)["spec"]["template"]["metadata"]["annotations"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)",
                        annotations["kubectl.kubernetes.io/restartedAt"])
    r = kubectl("rollout", "history", "rs/web-h1")
    assert (r.code, r.err) == (1, 'error: no history viewer has been implemented for "ReplicaSet.apps"\n')


def _set_status(client: Client, status: dict[str, Any]) -> None:
    client.patch_raw("deployments", "web", {"status": status}, subresource="status")  # the client's namespace


def test_rollout_status_follows_the_deployment(kubectl: Kubectl, client: Client) -> None:
    dep = _deploy(client, "web", replicas=2)
    gen = dep["metadata"].get("generation", 1)
    _set_status(client, {"observedGeneration": gen, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 0})
    r = kubectl("rollout", "status", "deploy/web", "--watch=false")
    assert (r.code, r.out) == (0, 'Waiting for deployment "web" rollout to finish: 1 out of 2 new replicas have '
                                  'been updated...\n')

    def progress() -> None:
        time.sleep(1.0)
        _set_status(client, {"observedGeneration": gen, "replicas": 3, "updatedReplicas": 2, "readyReplicas": 1,
                             "availableReplicas": 1})
        time.sleep(0.3)
        _set_status(client, {"observedGeneration": gen, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2,
                             "availableReplicas": 2})

    failures: list[BaseException] = []

    def run_progress() -> None:
        try:
            progress()
        except BaseException as e:  # noqa: BLE001 - reported by the assertion below
            failures.append(e)

    t = threading.Thread(target=run_progress)
    t.start()
    r = kubectl("rollout", "status", "deploy/web", "--timeout=30s")
    t.join()
    assert not failures
    assert r.code == 0
    out = lines(r.out)
    assert out[0] == 'Waiting for deployment "web" rollout to finish: 1 out of 2 new replicas have been updated...'
    assert out[-1] == 'deployment "web" successfully rolled out'

    _set_status(client, {"observedGeneration": gen, "replicas": 2, "updatedReplicas": 1, "readyReplicas": 0,
                         "availableReplicas": 0})
    started = time.monotonic()
    r = kubectl("rollout", "status", "deploy/web", "--timeout=1s")
    assert (r.code, r.err) == (1, "error: timed out waiting for the condition\n")
    assert time.monotonic() - started < 10
    _set_status(client, {"observedGeneration": gen, "conditions": [
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]})
    r = kubectl("rollout", "status", "deploy/web")
    assert (r.code, r.err) == (1, 'error: deployment "web" exceeded its progress deadline\n')


# ---------------------------------------------------------------- logs / exec (no kubelet yet)

def test_logs_and_exec_reach_the_api_server(kubectl: Kubectl, client: Client, namespace: str) -> None:
    dep = _deploy(client, "web")
    for name in ("web-1", "web-2"):
        client.create_raw("pods", {"metadata": {"name": name, "labels": {"app": "web"}, "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-x", "uid": dep["metadata"]["uid"],
             "controller": True}]}, "spec": {"containers": [{"name": "web", "image": "x"},
                                                            {"name": "side", "image": "y"}]}}, namespace)
    r = kubectl("logs", "deploy/web")
    assert r.code == 1
    err = lines(r.err)
    assert err[0] == "Found 2 pods, using pod/web-1"
    assert err[1] == 'Defaulted container "web" out of: web, side'
    assert err[2].startswith("Error from server (")  # the API server cannot reach a kubelet for it yet
    r = kubectl("logs", "nope")
    assert (r.code, r.err) == (1, 'Error from server (NotFound): pods "nope" not found\n')
    r = kubectl("exec", "web-1", "-c", "web", "--", "ls", "/")
    assert r.code == 1 and r.err.startswith("Error from server (")


# ---------------------------------------------------------------- config, version, discovery

def test_config_commands(kubectl: Kubectl, kubeconfig: Path, namespace: str) -> None:
    team, other = f"{namespace}-team", f"{namespace}-other"  # namespaces no other test makes objects in
    doc = yaml.safe_load(kubeconfig.read_text())
    doc["contexts"].append({"name": "team", "context": {"cluster": doc["clusters"][0]["name"], "user": "admin",
                                                        "namespace": team}})
    doc["users"][0]["user"] = {"token": "s3cret"}
    kubeconfig.write_text(yaml.safe_dump(doc))
    current = doc["current-context"]
    assert kubectl("config", "current-context").out == f"{current}\n"
    table = lines(kubectl("config", "get-contexts").out)
    assert table[0].split() == ["CURRENT", "NAME", "CLUSTER", "AUTHINFO", "NAMESPACE"]
    assert any(row.startswith("*") and current in row for row in table[1:])
    view = kubectl("config", "view").out
    assert "token: REDACTED" in view and "s3cret" not in view
    assert "s3cret" in kubectl("config", "view", "--raw").out

    assert kubectl("config", "use-context", "team").out == 'Switched to context "team".\n'
    assert yaml.safe_load(kubeconfig.read_text())["current-context"] == "team"
    assert kubectl("get", "pods").err == f"No resources found in {team} namespace.\n"
    assert kubectl("config", "set-context", "--current", f"--namespace={other}").out == \
        'Context "team" modified.\n'
    assert kubectl("get", "pods").err == f"No resources found in {other} namespace.\n"
    r = kubectl("config", "use-context", "nope")
    assert (r.code, r.err) == (1, 'error: no context exists with the name: "nope"\n')


def test_version_cluster_info_api_resources(kubectl: Kubectl, shared_api_server: ApiServerProcess) -> None:
    version = lines(kubectl("version").out)
    assert version[0].startswith("Client Version: v") and version[1].startswith("Server Version: v1.")
    assert kubectl("cluster-info").out == f"Kubernetes control plane is running at {shared_api_server.url}\n"
    table = lines(kubectl("api-resources").out)
    assert table[0].split() == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    assert "deployments   deploy       apps/v1" in "\n".join(table)
    names = lines(kubectl("api-resources", "-o", "name").out)
    assert "pods" in names and "deployments.apps" in names
    assert all("/" not in n for n in names)
