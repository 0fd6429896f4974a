"""The README's first command from a clean clone: `scripts/demo.sh` sets up a fresh
.venv, builds and pushes the hello image, starts a one-node cluster, deploys and
exposes hello and curls it; `scripts/demo.sh down` stops the cluster and `mkube reset`
removes its containers and state.

The test clones the repository it runs in (its committed HEAD: a fresh checkout must
work) into tmp and runs the demo there on its own data dir, free API/kubelet ports and a
unique node name (MKUBE_NODE_NAME), so other clusters on this machine are not touched.
The registry on localhost:5000 comes from the `registry` fixture (the demo leaves an
answering registry alone). At teardown, even on failure: the demo's process group and
the recorded `mkube up` are stopped, every container of the node is removed
(docker_cleanup, label io.mkube.node.name).

The clone's scripts/setup.sh runs `pip install -e '.[test]'` into a new .venv (pip's
cache and find-links are reused as configured on the machine): minutes, hence the timeout.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.apiserver import free_port
from tests.fixtures.docker import NODE_NAME_LABEL, DockerCleanup

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker_cleanup")]

HERE = Path(__file__).resolve().parent
DEMO_TIMEOUT_S = 600


@dataclass
class Demo:
    checkout: Path
    data: Path
    node: str
    env: dict[str, str]
    groups: list[int]

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a command in the checkout in its own process group (recorded, killed at
        teardown with everything it left running)."""
        proc = subprocess.Popen(list(args), cwd=self.checkout, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.groups.append(proc.pid)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            raise AssertionError(f"{' '.join(args)} did not finish in {timeout} s:\n{out}\n{err}") from None
        return subprocess.CompletedProcess(list(args), proc.returncode, out, err)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _stop_group(pgid: int) -> None:
    """TERM the process group, KILL it after 20 s; a no-op when it is gone."""
    for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


@pytest.fixture
def demo(docker_cleanup: DockerCleanup, registry: str, tmp_path: Path) -> Iterator[Demo]:
    """A fresh clone of this repository, its demo environment, and a finalizer that stops
    whatever the demo started and removes the node's containers."""
    if registry != "localhost:5000":
        pytest.fail(f"the demo pushes to localhost:5000, but port 5000 is taken by something that is not a registry "
                    f"(the registry fixture fell back to {registry})", pytrace=False)
    top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=HERE, capture_output=True, text=True,
                         check=True).stdout.strip()
    checkout = tmp_path / "mkube"
    subprocess.run(["git", "clone", "-q", top, str(checkout)], check=True, timeout=120)
    if "MKUBE_NODE_NAME" not in (checkout / "scripts" / "demo.sh").read_text():
        pytest.fail("the committed scripts/demo.sh does not honour MKUBE_NODE_NAME; without it the demo would "
                    "run as this machine's hostname and touch its containers", pytrace=False)
    node = docker_cleanup.node(f"e2e-demo-{uuid.uuid4().hex[:8]}")
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "PYTHONPATH", "VIRTUAL_ENV")}
    env.update(MKUBE_DATA_DIR=str(tmp_path / "data"), MKUBE_PORT=str(free_port()),
               MKUBE_KUBELET_PORT=str(free_port()), MKUBE_NODE_NAME=node)
    d = Demo(checkout, tmp_path / "data", node, env, [])
    try:
        yield d
    finally:
        pidfile = d.data / "mkube.pid"
        if pidfile.exists():  # `demo.sh down` was not reached or did not stop it
            pid = int(pidfile.read_text().strip())
            if _alive(pid) and "mkube" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
                os.kill(pid, signal.SIGTERM)
        for pgid in d.groups:
            _stop_group(pgid)
        shutil.rmtree(checkout / ".venv", ignore_errors=True)  # 400 MB; pytest keeps 3 tmp dirs
        # docker_cleanup (requested first, so finalized last) removes the node's containers


@pytest.mark.timeout(900)
def test_demo_from_a_clean_clone(demo: Demo, docker_cleanup: DockerCleanup) -> None:
    started = time.monotonic()
    r = demo.run("scripts/demo.sh", timeout=DEMO_TIMEOUT_S)
    assert r.returncode == 0, f"scripts/demo.sh failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    print(f"scripts/demo.sh took {time.monotonic() - started:.0f} s")
    last = r.stdout.rstrip("\n").splitlines()[-1]
    m = re.fullmatch(r"Hello from (hello-[a-z0-9]+-[a-z0-9]{5})", last)
    assert m, f"the demo's output does not end with the curl answer:\n{r.stdout}\n{r.stderr}"
    assert "mkube: one-node cluster ready in" in r.stderr and f"(node {demo.node})" in r.stderr, r.stderr

    # the answering pod is one of the demo's, on the demo's node
    kubeconfig = dict(demo.env, KUBECONFIG=str(demo.data / "kubeconfig.yaml"))
    pods = subprocess.run([".venv/bin/mkubectl", "get", "pods", "-l", "app=hello", "-o",
                           "jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName}{'\\n'}{end}"],
                          cwd=demo.checkout, env=kubeconfig, capture_output=True, text=True, timeout=60)
    assert pods.returncode == 0, pods.stderr
    assert f"{m.group(1)} {demo.node}" in pods.stdout.splitlines(), pods.stdout
    pid = int((demo.data / "mkube.pid").read_text())

    down = demo.run("scripts/demo.sh", "down")
    assert down.returncode == 0 and "cluster stopped" in down.stderr, down.stderr
    assert not _alive(pid) and not (demo.data / "mkube.pid").exists()

    containers = docker_cleanup.client.containers.list(all=True, filters={"label": f"{NODE_NAME_LABEL}={demo.node}"})
    assert len(containers) == 6, [c.name for c in containers]  # the containers outlive mkube: 3 pods x (pause + app)
    reset = demo.run(".venv/bin/mkube", "reset", "-y", "--data-dir", str(demo.data), "--node-name", demo.node)
    assert reset.returncode == 0, reset.stderr
    assert reset.stdout == f"mkube: removed 6 container(s) of node {demo.node} and {demo.data}\n"
    assert not demo.data.exists()
    assert not docker_cleanup.client.containers.list(all=True, filters={"label": f"{NODE_NAME_LABEL}={demo.node}"})
