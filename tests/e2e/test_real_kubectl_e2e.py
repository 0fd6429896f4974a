"""The real `kubectl` (v1.32), unmodified and with its default flags, against a real
one-node `mkube up` cluster (`up_cluster`, tests/e2e/cluster.py): secure, reached
through the kubeconfig `mkube up` writes (embedded CA, admin bearer token).

The user flow of the README with kubectl instead of mkubectl: create a Deployment,
apply a changed file (a strategic merge patch), get pods (server-side Table), get -o
yaml, describe, expose as a NodePort and answer HTTP on 127.0.0.1, scale, rollout
status, logs, get -w while a pod is deleted, delete; and kubectl's strict field
validation (server-side, fieldValidation=Strict) rejecting an unknown field.

kubectl's discovery cache goes to the test's tmp dir (KUBECACHEDIR), so nothing of an
earlier cluster on the same port is reused. Every container of the test's node is
removed at teardown by docker_cleanup, the watching kubectl is killed, even on failure.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.e2e.cluster import Cluster, Result, hello_deployment, wait_for
from tests.fixtures.docker import DockerCleanup

KUBECTL = shutil.which("kubectl")

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker_cleanup")]


@pytest.fixture(autouse=True)
def _real_kubectl() -> None:
    # A missing kubectl fails, as in tests/integration/test_real_kubectl.py: a skip would
    # pass a run that never checked kubectl compatibility.
    if KUBECTL is None:
        pytest.fail("kubectl is not on PATH (the API-compatibility tests need the real kubectl 1.32)")

V2_ENV = "        imagePullPolicy: IfNotPresent\n        env:\n        - {name: MESSAGE, value: v2}\n"


def kubectl(c: Cluster, *args: str, timeout: float = 120) -> Result:
    assert KUBECTL is not None
    return c.run([KUBECTL, *args], timeout=timeout)


def ok(c: Cluster, *args: str, timeout: float = 120) -> str:
    r = kubectl(c, *args, timeout=timeout)
    assert r.code == 0, f"kubectl {' '.join(args)} failed ({r.code}): {r.err}"
    return r.out


def rolled_out(c: Cluster) -> None:
    out = ok(c, "rollout", "status", "deployment/hello", "--timeout=90s", timeout=100)
    assert out.splitlines()[-1] == 'deployment "hello" successfully rolled out', out


def running_pods(c: Cluster, n: int) -> list[str]:
    """Wait until `kubectl get pods` shows exactly n pods, all 1/1 Running; their names.
    Checks the Table's columns on the way."""

    def check() -> list[str] | None:
        lines = ok(c, "get", "pods").splitlines()
        assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"], lines
        rows = [re.fullmatch(r"(hello-[a-z0-9]+-[a-z0-9]{5})\s+1/1\s+Running\s+0\s+\d+s", row) for row in lines[1:]]
        return [m.group(1) for m in rows if m] if len(rows) == n and all(rows) else None

    return wait_for(check, 90, f"{n} Running pods in `kubectl get pods`")


def hello_answer(url: str) -> str | None:
    try:
        resp = httpx.get(url, timeout=2.0)
    except httpx.HTTPError:
        return None
    m = re.search(r"Hello from ([^<\s]+)", resp.text)
    return m.group(1) if resp.status_code == 200 and m else None


@pytest.mark.timeout(360)
def test_real_kubectl_user_flow(up_cluster: Cluster, docker_cleanup: DockerCleanup, hello_image: str,
                                tmp_path: Path) -> None:
    c = up_cluster
    c.extra_env["KUBECACHEDIR"] = str(tmp_path / "kube-cache")
    version = ok(c, "version")
    assert re.search(r"^Client Version: v1\.\d+", version, re.M) and re.search(r"^Server Version: v1\.\d+", version,
                                                                               re.M), version

    manifest = tmp_path / "hello.yaml"
    manifest.write_text(hello_deployment(hello_image))
    assert ok(c, "create", "-f", str(manifest)) == "deployment.apps/hello created\n"

    # apply of a changed file: kubectl sends a strategic merge patch of only the change
    # (the env of the container named hello); the rest of the container must survive it.
    manifest.write_text(hello_deployment(hello_image).replace("        imagePullPolicy: IfNotPresent\n", V2_ENV)
                        .replace("labels: {app: hello}\nspec:\n  replicas", "labels: {app: hello, tier: web}\nspec:\n  replicas"))
    r = kubectl(c, "apply", "-f", str(manifest))
    assert (r.code, r.out) == (0, "deployment.apps/hello configured\n"), r.err
    # kubectl's own warning for an object made by `create` without --save-config
    assert r.err == "" or "missing the kubectl.kubernetes.io/last-applied-configuration annotation" in r.err, r.err
    container = yaml.safe_load(ok(c, "get", "deployment", "hello", "-o", "yaml"))["spec"]["template"]["spec"][
        "containers"][0]
    assert container["env"] == [{"name": "MESSAGE", "value": "v2"}]
    assert container["image"] == hello_image and container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    rolled_out(c)

    # kubectl's strict field validation: the server rejects an unknown field, on create and on patch
    bad = tmp_path / "typo.yaml"
    bad.write_text(hello_deployment(hello_image).replace("name: hello\n", "name: typo\n", 1)
                   .replace("spec:\n  replicas", "spec:\n  foo: bar\n  replicas"))
    r = kubectl(c, "apply", "-f", str(bad))
    assert (r.code, r.out, r.err) == (1, "", f'Error from server (BadRequest): error when creating "{bad}": '
                                      'Deployment in version "v1" cannot be handled as a Deployment: '
                                      'strict decoding error: unknown field "spec.foo"\n')
    r = kubectl(c, "get", "deployment", "typo")
    assert (r.code, r.err) == (1, 'Error from server (NotFound): deployments.apps "typo" not found\n')
    generation = ok(c, "get", "deployment", "hello", "-o", "jsonpath={.metadata.generation}")
    bad.write_text(manifest.read_text().replace("spec:\n  replicas", "spec:\n  foo: bar\n  replicas"))
    r = kubectl(c, "apply", "-f", str(bad))
    assert r.code == 1 and f'error when patching "{bad}": strict decoding error: unknown field "spec.foo"' in r.err, r.err
    assert ok(c, "get", "deployment", "hello", "-o", "jsonpath={.metadata.generation}") == generation

    # get: the server's Table (NAME READY STATUS RESTARTS AGE), -o wide adds the node
    pods = running_pods(c, 2)
    wide = ok(c, "get", "pods", "-o", "wide").splitlines()
    assert wide[0].split()[:7] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"], wide
    assert all(row.split()[6] == c.node for row in wide[1:]), wide
    listed = yaml.safe_load(ok(c, "get", "deploy", "-o", "yaml"))
    assert listed["kind"] == "List" and [d["metadata"]["name"] for d in listed["items"]] == ["hello"]
    deploy = listed["items"][0]
    assert deploy["apiVersion"] == "apps/v1" and deploy["kind"] == "Deployment"
    assert deploy["metadata"]["labels"] == {"app": "hello", "tier": "web"}
    assert "kubectl.kubernetes.io/last-applied-configuration" in deploy["metadata"]["annotations"]
    assert deploy["spec"]["replicas"] == 2 and deploy["status"]["readyReplicas"] == 2

    described = ok(c, "describe", "deploy", "hello")
    assert re.search(r"^Name:\s+hello$", described, re.M)
    assert re.search(r"^Replicas:\s+2 desired \| 2 updated \| 2 total \| 2 available \| 0 unavailable$",
                     described, re.M), described
    assert re.search(r"^\s+MESSAGE:\s+v2$", described, re.M), described
    assert re.search(r"^NewReplicaSet:\s+hello-\S+ \(2/2 replicas created\)$", described, re.M), described
    assert re.search(r"Normal\s+ScalingReplicaSet\s+.*Scaled up replica set hello-\S+ to 2", described), described

    # expose as a NodePort; a pod answers on 127.0.0.1
    assert ok(c, "expose", "deployment", "hello", "--type", "NodePort", "--port", "80") == "service/hello exposed\n"
    svc = ok(c, "get", "service", "hello").splitlines()
    assert svc[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"], svc
    node_port = int(ok(c, "get", "service", "hello", "-o", "jsonpath={.spec.ports[0].nodePort}"))
    assert re.match(rf"hello\s+NodePort\s+[\d.]+\s+<none>\s+80:{node_port}/TCP\s+", svc[1]), svc
    answered = wait_for(lambda: hello_answer(f"http://127.0.0.1:{node_port}/"), 30, "the NodePort to answer")
    assert answered in pods, (answered, pods)

    # scale and wait for the rollout; logs of one of the pods
    assert ok(c, "scale", "deployment", "hello", "--replicas=3") == "deployment.apps/hello scaled\n"
    rolled_out(c)
    pods = running_pods(c, 3)
    r = kubectl(c, "logs", "deploy/hello")
    assert r.code == 0 and re.match(r"hello: serving /www for hello-\S+ on port 80\n", r.out), (r.out, r.err)
    assert re.fullmatch(r"Found 3 pods, using pod/hello-\S+\n", r.err), r.err

    # get -w streams the change while a pod is deleted (delete waits until it is gone)
    watch_out = tmp_path / "watch.out"
    with open(watch_out, "wb") as out:
        watch = subprocess.Popen([KUBECTL or "kubectl", "get", "pods", "-w"], env=c.env, stdout=out,
                                 stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: len(watch_out.read_text().splitlines()) >= 4, 30, "kubectl get -w to list the pods")
        victim = pods[0]
        started = time.monotonic()
        assert ok(c, "delete", "pod", victim) == f'pod "{victim}" deleted\n'
        assert time.monotonic() - started < 30
        r = kubectl(c, "get", "pod", victim)
        assert (r.code, r.err) == (1, f'Error from server (NotFound): pods "{victim}" not found\n')

        def replaced() -> list[list[str]] | None:
            rows = [line.split() for line in watch_out.read_text().splitlines()[1:]]
            new = [row for row in rows if row[0] not in pods and row[1:3] == ["1/1", "Running"]]
            gone = [row for row in rows if row[0] == victim and row[2] == "Terminating"]
            return rows if new and gone else None

        wait_for(replaced, 30, "kubectl get -w to show the deletion and the replacement pod")
        assert watch.poll() is None, watch_out.read_text()  # still watching
        lines = watch_out.read_text().splitlines()
        assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"], lines
        assert sorted(line.split()[0] for line in lines[1:4]) == sorted(pods), lines
    finally:
        watch.kill()
        watch.wait(10)
    running_pods(c, 3)

    # delete: the deployment goes at once, its pods and their containers follow
    assert ok(c, "delete", "deployment", "hello") == 'deployment.apps "hello" deleted\n'
    r = kubectl(c, "get", "deployment", "hello")
    assert (r.code, r.err) == (1, 'Error from server (NotFound): deployments.apps "hello" not found\n')
    assert ok(c, "delete", "service", "hello") == 'service "hello" deleted\n'
    wait_for(lambda: ok(c, "get", "pods", "-o", "name") == "" or None, 60, "the pods to be gone")
    r = kubectl(c, "get", "pods")
    assert (r.code, r.out, r.err) == (0, "", "No resources found in default namespace.\n")
    wait_for(lambda: not docker_cleanup.client.containers.list(
        all=True, filters={"label": f"io.mkube.node.name={c.node}"}), 60, "the node's containers to be removed")
