"""mkubectl against a real one-node cluster (`mkube up`: API server, scheduler, controllers,
kubelet on the real Docker Engine): the flows that need running containers — rollout
status to completion, logs (also -f and deploy/NAME), a rollout and its undo, scale,
delete waiting for graceful termination.

The cluster is secure (HTTPS, admin token) and reached through the kubeconfig `mkube up`
writes, as a user would. Every container of the test's node is removed at teardown by
docker_cleanup, even on failure.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from tests.fixtures.apiserver import free_port
from tests.fixtures.docker import DockerCleanup

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker_cleanup")]

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")

HELLO = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
  labels: {app: hello}
spec:
  replicas: 2
  selector:
    matchLabels: {app: hello}
  template:
    metadata:
      labels: {app: hello}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: hello
        image: IMAGE
        imagePullPolicy: IfNotPresent
        ports:
        - containerPort: 80
        readinessProbe:
          httpGet: {path: /healthz, port: 80}
          periodSeconds: 1
"""


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Cluster:
    kubeconfig: Path
    node: str
    log: Path

    def kubectl(self, *args: str, timeout: float = 120) -> Result:
        env = dict(os.environ, KUBECONFIG=str(self.kubeconfig))
        p = subprocess.run([sys.executable, "-m", "mkube.kubectl.main", *args], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=timeout)
        assert "Traceback" not in p.stderr
        return Result(p.returncode, p.stdout, p.stderr)

    def ok(self, *args: str, timeout: float = 120) -> str:
        r = self.kubectl(*args, timeout=timeout)
        assert r.code == 0, f"mkubectl {' '.join(args)} failed: {r.err}"
        return r.out


def wait_for(fn: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}: last {last!r}")


@pytest.fixture
def cluster(docker_cleanup: DockerCleanup, hello_image: str, busybox_image: str, pause_image: str,
            tmp_path: Path) -> Iterator[Cluster]:
    node = docker_cleanup.node(f"e2e-kctl-{uuid.uuid4().hex[:8]}")
    data = tmp_path / "mkube"
    log = tmp_path / "mkube-up.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mkube.cli", "up", "--data-dir", str(data),
                                 "--port", str(free_port()), "--node-name", node,
                                 "--kubelet-port", str(free_port())],
                                cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                env=dict(os.environ, PYTHONUNBUFFERED="1"))
    c = Cluster(data / "kubeconfig.yaml", node, log)
    try:
        def ready() -> bool:
            assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
            if not c.kubeconfig.exists():
                return False
            r = c.kubectl("get", "node", node, "-o", 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')
            return r.code == 0 and r.out == "True"

        wait_for(ready, 60, "the node to be Ready")
        yield c
        # Leave nothing behind: the cluster's own deletion first, docker_cleanup after.
        c.kubectl("delete", "deploy,rs,pods", "--all", "--wait=false")
    except BaseException:
        print(f"---- mkube up log ----\n{log.read_text(errors='replace')[-5000:]}")
        raise
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.mark.timeout(300)
def test_deployment_lifecycle_with_real_containers(cluster: Cluster, hello_image: str, tmp_path: Path) -> None:
    manifest = tmp_path / "hello.yaml"
    manifest.write_text(HELLO.replace("IMAGE", hello_image))
    assert cluster.ok("apply", "-f", str(manifest)) == "deployment.apps/hello created\n"

    out = cluster.ok("rollout", "status", "deployment/hello", "--timeout=90s")
    assert out.splitlines()[-1] == 'deployment "hello" successfully rolled out'
    rows = cluster.ok("get", "pods", "-l", "app=hello", "--no-headers").splitlines()
    assert len(rows) == 2 and all(re.match(r"hello-\S+\s+1/1\s+Running\s+0\s+", row) for row in rows)

    r = cluster.kubectl("logs", "deploy/hello")
    assert r.code == 0 and "hello: serving /www for hello-" in r.out
    assert re.fullmatch(r"Found 2 pods, using pod/hello-\S+\n", r.err)
    described = cluster.ok("describe", "deploy", "hello")
    assert re.search(r"^Replicas:\s+2 desired \| 2 updated \| 2 total \| 2 available \| 0 unavailable$",
                     described, re.M)
    assert re.search(r"Normal\s+ScalingReplicaSet\s+.*Scaled up replica set hello-\S+ to 2", described)

    # A new revision, then back to the first one.
    manifest.write_text(HELLO.replace("IMAGE", hello_image).replace(
        "        imagePullPolicy: IfNotPresent\n",
        "        imagePullPolicy: IfNotPresent\n        env:\n        - {name: MESSAGE, value: v2}\n"))
    assert cluster.ok("apply", "-f", str(manifest)) == "deployment.apps/hello configured\n"
    out = cluster.ok("rollout", "status", "deploy/hello", "--timeout=90s")
    assert out.splitlines()[-1] == 'deployment "hello" successfully rolled out'
    history = cluster.ok("rollout", "history", "deploy/hello").splitlines()
    assert history[1:4] == ["REVISION  CHANGE-CAUSE", "1         <none>", "2         <none>"]
    assert cluster.ok("rollout", "undo", "deploy/hello") == "deployment.apps/hello rolled back\n"
    out = cluster.ok("rollout", "status", "deploy/hello", "--timeout=90s")
    assert out.splitlines()[-1] == 'deployment "hello" successfully rolled out'
    env = cluster.ok("get", "deploy", "hello", "-o", "jsonpath={.spec.template.spec.containers[0].env}")
    assert env == ""

    assert cluster.ok("scale", "deploy/hello", "--replicas=3") == "deployment.apps/hello scaled\n"
    cluster.ok("rollout", "status", "deploy/hello", "--timeout=90s")
    names = cluster.ok("get", "pods", "-l", "app=hello", "--field-selector=status.phase=Running", "-o", "name")
    assert len(names.splitlines()) == 3

    # delete waits until the deployment is gone; its pods then stop gracefully
    assert cluster.ok("delete", "-f", str(manifest)) == 'deployment.apps "hello" deleted\n'
    wait_for(lambda: cluster.kubectl("get", "pods", "-l", "app=hello", "-o", "name").out == "" or None, 60,
             "the pods of the deleted deployment to be gone")


@pytest.mark.timeout(180)
def test_logs_follow_and_delete_waits_for_the_kubelet(cluster: Cluster, busybox_image: str) -> None:
    assert cluster.ok("run", "counter", f"--image={busybox_image}", "--restart=Never", "--",
                      "sh", "-c", "sleep 1; for i in 1 2 3; do echo line $i; sleep 0.5; done") == "pod/counter created\n"

    def running() -> str | None:
        phase = cluster.ok("get", "pod", "counter", "-o", "jsonpath={.status.phase}")
        return phase if phase in ("Running", "Succeeded") else None

    wait_for(running, 60, "the pod to run")
    assert cluster.ok("logs", "-f", "counter", timeout=60) == "line 1\nline 2\nline 3\n"
    wait_for(lambda: cluster.ok("get", "pod", "counter", "-o", "jsonpath={.status.phase}") == "Succeeded" or None,
             30, "the pod to succeed")
    assert re.match(r"counter\s+0/1\s+Completed\s+0\s+", cluster.ok("get", "pod", "counter", "--no-headers"))
    assert cluster.ok("logs", "counter", "--tail=1") == "line 3\n"

    assert cluster.ok("run", "sleeper", f"--image={busybox_image}", "--", "sleep", "3600") == "pod/sleeper created\n"
    wait_for(lambda: cluster.ok("get", "pod", "sleeper", "-o", "jsonpath={.status.phase}") == "Running" or None,
             60, "sleeper to run")
    # exec runs through the API server and the node's kubelet; the exit code comes back
    assert cluster.ok("exec", "sleeper", "--", "sh", "-c", "echo hi from $(hostname)") == "hi from sleeper\n"
    r = cluster.kubectl("exec", "sleeper", "--", "sh", "-c", "exit 3")
    assert r.code == 3
    started = time.monotonic()
    r = cluster.kubectl("delete", "pod", "sleeper", "--grace-period=2")
    assert (r.code, r.out) == (0, 'pod "sleeper" deleted\n')
    assert time.monotonic() - started < 30
    r = cluster.kubectl("get", "pod", "sleeper")
    assert (r.code, r.err) == (1, 'Error from server (NotFound): pods "sleeper" not found\n')
