"""A real one-node `mkube up` cluster for e2e tests (API server, scheduler, controllers,
kubelet on the real Docker Engine), reached as a user would: through the kubeconfig
`mkube up` writes (HTTPS with its embedded CA, admin bearer token).

Fixture (made visible to every e2e test by tests/e2e/conftest.py):
    up_cluster  a ready ``Cluster`` on a unique node name, a data dir under tmp_path and
                free API/kubelet ports. At teardown, even when the test failed, the
                cluster's objects are deleted, `mkube up` is stopped (SIGTERM, then
                SIGKILL) and docker_cleanup removes every container of the node. On
                failure the tail of the `mkube up` log is printed.

Helpers: ``Cluster`` (``.run`` any client command with the cluster's KUBECONFIG,
``.kubectl``/``.ok`` for mkubectl), ``Result``, ``wait_for``, ``hello_deployment``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.fixtures.apiserver import free_port
from tests.fixtures.docker import DockerCleanup

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


def hello_deployment(image: str) -> str:
    """YAML of Deployment `hello` (label app=hello, 2 replicas of `image`, port 80, an
    HTTP readiness probe on /healthz, a 2 s grace period)."""
    return HELLO.replace("IMAGE", image)


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
    data_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """The environment of a client of this cluster: KUBECONFIG points at its kubeconfig."""
        return dict(os.environ, KUBECONFIG=str(self.kubeconfig), **self.extra_env)

    def run(self, argv: Sequence[str], timeout: float = 120) -> Result:
        """Run a client command (e.g. the real kubectl) against this cluster."""
        p = subprocess.run(list(argv), cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout)
        return Result(p.returncode, p.stdout, p.stderr)

    def kubectl(self, *args: str, timeout: float = 120) -> Result:
        """mkubectl ARGS; never a traceback."""
        r = self.run([sys.executable, "-m", "mkube.kubectl.main", *args], timeout=timeout)
        assert "Traceback" not in r.err
        return r

    def ok(self, *args: str, timeout: float = 120) -> str:
        """mkubectl ARGS, which must succeed; its stdout."""
        r = self.kubectl(*args, timeout=timeout)
        assert r.code == 0, f"mkubectl {' '.join(args)} failed: {r.err}"
        return r.out


def wait_for(fn: Callable[[], T | None], timeout: float, what: str, interval: float = 0.3,
             retry_on: tuple[type[BaseException], ...] = ()) -> T:
    """Poll fn until it returns something truthy; return it. AssertionError naming
    `what` and the last value (or retried exception) after `timeout` seconds. Exceptions
    of `retry_on` count as "not yet"; others propagate."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = fn()
        except retry_on as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}: last {last!r}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture
def up_cluster(docker_cleanup: DockerCleanup, hello_image: str, busybox_image: str, pause_image: str,
               tmp_path: Path) -> Iterator[Cluster]:
    """A ready one-node `mkube up` cluster (see module doc); requires the images built."""
    node = docker_cleanup.node(f"e2e-up-{uuid.uuid4().hex[:8]}")
    data = tmp_path / "mkube"
    log = tmp_path / "mkube-up.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mkube.cli", "up", "--data-dir", str(data),
                                 "--port", str(free_port()), "--node-name", node,
                                 "--kubelet-port", str(free_port())],
                                cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                env=dict(os.environ, PYTHONUNBUFFERED="1"))
    c = Cluster(data / "kubeconfig.yaml", node, log, data)
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
        _stop(proc)
