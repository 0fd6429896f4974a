"""`mkube up` is secure by default, end to end with Docker: the local agent joins with
the join token like any other node, the API server reaches the kubelet with the node's
kubelet token (`kubectl logs`), and the kubelet's port refuses everyone else."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from mkube.api.errors import ApiError
from mkube.client import Client
from tests.fixtures.apiserver import REPO, free_port
from tests.fixtures.docker import DockerCleanup

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker_cleanup")]


def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _up(data: Path, node: str, port: int, kubelet_port: int, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mkube.cli", "up", "--data-dir", str(data), "--port", str(port),
                                 "--node-name", node, "--kubelet-port", str(kubelet_port)], cwd=REPO, stdout=out,
                                stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    start = log.stat().st_size if log.exists() else 0

    def ready() -> bool:
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        return "one-node cluster ready" in log.read_text(errors="replace")[start:]

    _wait(ready, 90, "mkube up")
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.mark.timeout(300)
def test_up_is_secure_end_to_end(docker_cleanup: DockerCleanup, busybox_image: str, pause_image: str,
                                 tmp_path: Path) -> None:
    node = docker_cleanup.node(f"e2e-sec-{uuid.uuid4().hex[:8]}")
    data, log = tmp_path / "mkube", tmp_path / "up.log"
    port, kubelet_port = free_port(), free_port()
    proc = _up(data, node, port, kubelet_port, log)
    client: Client | None = None
    try:
        text = log.read_text()
        assert f"API server ready at https://127.0.0.1:{port}" in text and "--insecure-http" not in text
        client = Client.from_kubeconfig(data / "kubeconfig.yaml")
        assert client.server == f"https://127.0.0.1:{port}"
        client.create_raw("pods", {"metadata": {"name": "talker"}, "spec": {"containers": [{
            "name": "c", "image": busybox_image, "imagePullPolicy": "IfNotPresent",
            "command": ["sh", "-c", "echo secure-hello; sleep 600"]}], "terminationGracePeriodSeconds": 1}},
            "default")

        def running() -> bool:
            assert client is not None
            return (client.get_raw("pods", "talker", "default").get("status") or {}).get("phase") == "Running"

        _wait(running, 120, "pod talker Running")
        _wait(lambda: "secure-hello" in str(client.log("default", "talker")), 30, "the pod's log via the API")
        for headers in ({}, {"Authorization": "Bearer " + (data / "tokens" / "admin").read_text().strip()}):
            r = httpx.get(f"http://127.0.0.1:{kubelet_port}/containerLogs/default/talker/c", headers=headers)
            assert r.status_code == 401, r.text  # only the API server's kubelet token opens the kubelet port
        agent_dir = data / "agent"
        for name in ("credentials.json", "node-password", "server-ca.crt"):
            assert stat.S_IMODE((agent_dir / name).stat().st_mode) == 0o600
        assert (agent_dir / "server-ca.crt").read_bytes() == (data / "tls" / "ca.crt").read_bytes()

        # a restart re-joins as the same node (same node password) and keeps the pod
        client.close()
        client = None
        _stop(proc)
        proc = _up(data, node, port, kubelet_port, log)
        client = Client.from_kubeconfig(data / "kubeconfig.yaml")
        restarted = client

        def logs_again() -> bool:
            try:
                return "secure-hello" in str(restarted.log("default", "talker"))
            except ApiError:  # the restarted kubelet has not adopted the pod yet
                return False

        _wait(logs_again, 60, "the pod's log after the restart")
        client.delete_raw("pods", "talker", "default")
        _wait(lambda: not docker_cleanup.client.containers.list(all=True, filters={"label": f"io.mkube.node.name={node}"}),
              60, "the kubelet to remove the pod's containers")
    except BaseException:
        print(f"---- mkube up log ----\n{log.read_text(errors='replace')[-5000:]}")
        raise
    finally:
        if client is not None:
            client.close()
        _stop(proc)
