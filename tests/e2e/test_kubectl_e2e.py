"""mkubectl against a real one-node cluster (`mkube up`: API server, scheduler, controllers,
kubelet on the real Docker Engine): the flows that need running containers — rollout
status to completion, logs (also -f and deploy/NAME), a rollout and its undo, scale,
delete waiting for graceful termination.

The cluster (`up_cluster`, tests/e2e/cluster.py) is secure (HTTPS, admin token) and
reached through the kubeconfig `mkube up` writes, as a user would. Every container of
the test's node is removed at teardown by docker_cleanup, even on failure.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.e2e.cluster import Cluster, hello_deployment, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker_cleanup")]


@pytest.mark.timeout(300)
def test_deployment_lifecycle_with_real_containers(up_cluster: Cluster, hello_image: str, tmp_path: Path) -> None:
    manifest = tmp_path / "hello.yaml"
    manifest.write_text(hello_deployment(hello_image))
    assert up_cluster.ok("apply", "-f", str(manifest)) == "deployment.apps/hello created\n"

    out = up_cluster.ok("rollout", "status", "deployment/hello", "--timeout=90s")
    assert out.splitlines()[-1] == 'deployment "hello" successfully rolled out'
    rows = up_cluster.ok("get", "pods", "-l", "app=hello", "--no-headers").splitlines()
    assert len(rows) == 2 and all(re.match(r"hello-\S+\s+1/1\s+Running\s+0\s+", row) for row in rows)

    r = up_cluster.kubectl("logs", "deploy/hello")
    assert r.code == 0 and "hello: serving /www for hello-" in r.out
    assert re.fullmatch(r"Found 2 pods, using pod/hello-\S+\n", r.err)
    described = up_cluster.ok("describe", "deploy", "hello")
    assert re.search(r"^Replicas:\s+2 desired \| 2 updated \| 2 total \| 2 available \| 0 unavailable$",
                     described, re.M)
    assert re.search(r"Normal\s+ScalingReplicaSet\s+.*Scaled up replica set hello-\S+ to 2", described)

    # A new revision, then back to the first one.
    manifest.write_text(hello_deployment(hello_image).replace(
        "        imagePullPolicy: IfNotPresent\n",
        "        imagePullPolicy: IfNotPresent\n        env:\n        - {name: MESSAGE, value: v2}\n"))
    assert up_cluster.ok("apply", "-f", str(manifest)) == "deployment.apps/hello configured\n"
    out = up_cluster.ok("rollout", "status", "deploy/hello", "--timeout=90s")
    assert out.splitlines()[-1] == 'deployment "hello" successfully rolled out'
    history = up_cluster.ok("rollout", "history", "deploy/hello").splitlines()
    assert history[1:4] == ["REVISION  CHANGE-CAUSE", "1         <none>", "2         <none>"]
    assert up_cluster.ok("rollout", "undo", "deploy/hello") == "deployment.apps/hello rolled back\n"
    out = up_cluster.ok("rollout", "status", "deploy/hello", "--timeout=90s")
    assert out.splitlines()[-1] == 'deployment "hello" successfully rolled out'
    env = up_cluster.ok("get", "deploy", "hello", "-o", "jsonpath={.spec.template.spec.containers[0].env}")
    assert env == ""

    assert up_cluster.ok("scale", "deploy/hello", "--replicas=3") == "deployment.apps/hello scaled\n"
    up_cluster.ok("rollout", "status", "deploy/hello", "--timeout=90s")
    names = up_cluster.ok("get", "pods", "-l", "app=hello", "--field-selector=status.phase=Running", "-o", "name")
    assert len(names.splitlines()) == 3

    # delete waits until the deployment is gone; its pods then stop gracefully
    assert up_cluster.ok("delete", "-f", str(manifest)) == 'deployment.apps "hello" deleted\n'
    wait_for(lambda: up_cluster.kubectl("get", "pods", "-l", "app=hello", "-o", "name").out == "" or None, 60,
             "the pods of the deleted deployment to be gone")


@pytest.mark.timeout(180)
def test_logs_follow_and_delete_waits_for_the_kubelet(up_cluster: Cluster, busybox_image: str) -> None:
    assert up_cluster.ok("run", "counter", f"--image={busybox_image}", "--restart=Never", "--",
                      "sh", "-c", "sleep 1; for i in 1 2 3; do echo line $i; sleep 0.5; done") == "pod/counter created\n"

    def running() -> str | None:
        phase = up_cluster.ok("get", "pod", "counter", "-o", "jsonpath={.status.phase}")
        return phase if phase in ("Running", "Succeeded") else None

    wait_for(running, 60, "the pod to run")
    assert up_cluster.ok("logs", "-f", "counter", timeout=60) == "line 1\nline 2\nline 3\n"
    wait_for(lambda: up_cluster.ok("get", "pod", "counter", "-o", "jsonpath={.status.phase}") == "Succeeded" or None,
             30, "the pod to succeed")
    assert re.match(r"counter\s+0/1\s+Completed\s+0\s+", up_cluster.ok("get", "pod", "counter", "--no-headers"))
    assert up_cluster.ok("logs", "counter", "--tail=1") == "line 3\n"

    assert up_cluster.ok("run", "sleeper", f"--image={busybox_image}", "--", "sleep", "3600") == "pod/sleeper created\n"
    wait_for(lambda: up_cluster.ok("get", "pod", "sleeper", "-o", "jsonpath={.status.phase}") == "Running" or None,
             60, "sleeper to run")
    # exec runs through the API server and the node's kubelet; the exit code comes back
    assert up_cluster.ok("exec", "sleeper", "--", "sh", "-c", "echo hi from $(hostname)") == "hi from sleeper\n"
    r = up_cluster.kubectl("exec", "sleeper", "--", "sh", "-c", "exit 3")
    assert r.code == 3
    started = time.monotonic()
    r = up_cluster.kubectl("delete", "pod", "sleeper", "--grace-period=2")
    assert (r.code, r.out) == (0, 'pod "sleeper" deleted\n')
    assert time.monotonic() - started < 30
    r = up_cluster.kubectl("get", "pod", "sleeper")
    assert (r.code, r.err) == (1, 'Error from server (NotFound): pods "sleeper" not found\n')
