"""The kubelet against a real API server and the real Docker Engine.

Each test runs `python -m mkube.kubelet` as a subprocess for a node of its own (unique
name, claimed by docker_cleanup so that whatever it made is removed even on failure),
with short back-offs and a fast relist so the suite stays quick. At teardown every pod is
deleted and the test asserts that the kubelet itself removed all of its containers.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import docker
import httpx
import pytest

from mkube.api.types import ConfigMap, Event, Lease, Node, ObjectMeta, Pod, Secret, Service
from mkube.client import Client
from mkube.kubelet.runtime.base import LABEL_NODE_NAME
from tests.fixtures.apiserver import ApiServerProcess
from tests.fixtures.docker import DockerCleanup

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker_cleanup")]

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")
FAST = ["--crashloop-backoff-initial", "1", "--crashloop-backoff-max", "4", "--image-pull-backoff-initial", "2",
        "--relist-period", "0.5", "--resync-period", "5", "--housekeeping-period", "2",
        "--lease-renew-interval", "2", "--node-status-update-frequency", "2"]


def wait_for(fn: Callable[[], T], timeout: float = 20.0, interval: float = 0.2, what: str = "") -> T:
    """Poll `fn` until it returns something truthy; fail with the last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = fn()
        except AssertionError as e:
            last = e
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or fn}: last {last!r}")


class KubeletProcess:
    """`python -m mkube.kubelet` for one node; restartable (same node, same root dir)."""

    def __init__(self, server: str, node: str, root: Path, labels: dict[str, str], extra: list[str]) -> None:
        self.server, self.node, self.root = server, node, root
        self.log_path = root.parent / f"kubelet-{node}.log"
        self.cmd = [sys.executable, "-m", "mkube.kubelet", "--server", server, "--node-name", node,
                    "--node-ip", "127.0.0.1", "--port", "0", "--root-dir", str(root), *FAST, *extra]
        for k, v in labels.items():
            self.cmd += ["--runtime-label", f"{k}={v}"]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> KubeletProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(self.cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, PYTHONUNBUFFERED="1"))
        log.close()
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(5)

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


class Env:
    def __init__(self, client: Client, kubelet: KubeletProcess, docker_client: docker.DockerClient) -> None:
        self.client, self.kubelet, self.docker = client, kubelet, docker_client
        self.node = kubelet.node

    def pod(self, name: str, containers: list[dict[str, Any]], **spec: Any) -> Pod:
        spec.setdefault("terminationGracePeriodSeconds", 2)
        body = {"metadata": {"name": name, "namespace": "default"},
                "spec": {"nodeName": self.node, "containers": containers, **spec}}
        return self.client.create(Pod.from_dict(body))

    def get(self, name: str) -> Pod:
        return self.client.get(Pod, name, "default")

    def status(self, name: str, container: int = 0) -> dict[str, Any]:
        st = self.get(name).status.to_dict()
        cs = (st.get("containerStatuses") or [{}])[container]
        return {"phase": st.get("phase"), **cs}

    def wait_running(self, name: str, timeout: float = 20.0) -> Pod:
        def check() -> Pod | None:
            p = self.get(name)
            css = p.status.container_statuses or []
            ok = p.status.phase == "Running" and css and all(c.state and c.state.running for c in css)
            return p if ok else None
        return wait_for(check, timeout, what=f"pod {name} running")

    def log(self, name: str, container: str | None = None, previous: bool = False) -> str:
        out = self.client.log("default", name, container, previous=previous)
        assert isinstance(out, str)
        return out

    def events(self, name: str) -> list[tuple[str, str]]:
        return [(e.reason or "", e.message or "") for e in self.client.list(Event, "default").items
                if e.involved_object.name == name]

    def containers(self, **filters: str) -> list[Any]:
        labels = [f"{LABEL_NODE_NAME}={self.node}"] + [f"{k}={v}" for k, v in filters.items()]
        return self.docker.api.containers(all=True, filters={"label": labels})

    def kubelet_url(self) -> str:
        node = self.client.get(Node, self.node)
        port = node.status.daemon_endpoints.kubelet_endpoint.port  # type: ignore[union-attr]
        return f"http://{node.internal_ip()}:{port}"


@pytest.fixture
def env(api_server: ApiServerProcess, docker_cleanup: DockerCleanup, docker_client: docker.DockerClient,
        busybox_image: str, hello_image: str, pause_image: str, tmp_path: Path) -> Iterator[Env]:
    node = docker_cleanup.node(f"e2e-kl-{uuid.uuid4().hex[:8]}")
    client = Client(api_server.url)
    kubelet = KubeletProcess(api_server.url, node, tmp_path / "root", docker_cleanup.labels, []).start()
    e = Env(client, kubelet, docker_client)
    try:
        def ready() -> bool:
            assert kubelet.proc is not None and kubelet.proc.poll() is None, kubelet.log_tail()
            try:
                cond = client.get(Node, node).condition("Ready")
            except Exception:
                return False
            return cond is not None and cond.status == "True"
        wait_for(ready, 30, what="node Ready")
        yield e
        # Teardown through the kubelet itself: delete every pod, then nothing may be left.
        for p in client.list(Pod, "default").items:
            client.delete(Pod, p.metadata.name or "", "default", grace_period_seconds=1)
        wait_for(lambda: not client.list(Pod, "default").items, 30, what="all pods deleted")
        wait_for(lambda: not e.containers(), 15, what="the kubelet removing every container of the node")
        assert not list((tmp_path / "root" / "pods").glob("*")), "pod directories left behind"
    except BaseException:
        print(f"---- kubelet log ({node}) ----\n{kubelet.log_tail(120)}")
        raise
    finally:
        kubelet.stop()
        client.close()


# --------------------------------------------------------------------------- basics


def test_a_pod_runs_and_its_log_reaches_the_api_server(env: Env, busybox_image: str) -> None:
    node = env.client.get(Node, env.node)
    assert node.metadata.labels is not None and node.metadata.labels["kubernetes.io/hostname"] == env.node
    assert node.metadata.labels["kubernetes.io/os"] == "linux" and node.metadata.labels["kubernetes.io/arch"]
    assert node.internal_ip() == "127.0.0.1"
    assert node.status.node_info is not None and node.status.node_info.container_runtime_version.startswith(
        "docker://")  # type: ignore[union-attr]
    assert node.status.capacity is not None and node.status.capacity["pods"] == "110"
    lease = env.client.get(Lease, env.node, "kube-node-lease")
    assert lease.spec.holder_identity == env.node and lease.spec.lease_duration_seconds == 40

    env.pod("hello", [{"name": "main", "image": busybox_image,
                       "command": ["sh", "-c", "echo hello-from-mkube; echo line2; sleep 3600"],
                       "ports": [{"containerPort": 8080}]}])
    pod = env.wait_running("hello")
    assert pod.status.pod_ip and pod.status.host_ip == "127.0.0.1"
    cs = pod.status.container_statuses[0]  # type: ignore[index]
    assert cs.container_id and cs.container_id.startswith("docker://") and cs.ready and cs.restart_count == 0
    assert pod.status.published_ports and pod.status.published_ports[0].container_port == 8080
    assert [c.type for c in pod.status.conditions or [] if c.status == "True"] == [
        "Initialized", "Ready", "ContainersReady", "PodScheduled"]
    assert wait_for(lambda: "hello-from-mkube\nline2\n" in env.log("hello"), 10)
    assert env.client.log("default", "hello", tail_lines=1) == "line2\n"
    reasons = [r for r, _ in env.events("hello")]
    assert {"Pulled", "Created", "Started"} <= set(reasons)
    # the kubelet's own endpoint: exec
    r = httpx.post(env.kubelet_url() + "/exec/default/hello/main", params={"command": ["sh", "-c", "echo $((6*7))"]})
    assert r.status_code == 200 and r.json()["exitCode"] == 0 and r.json()["output"] == "42\n"
    assert httpx.get(env.kubelet_url() + "/healthz").text == "ok"


def test_two_containers_share_localhost(env: Env, busybox_image: str, hello_image: str) -> None:
    env.pod("duo", [
        {"name": "web", "image": hello_image},
        {"name": "client", "image": busybox_image, "command": [
            "sh", "-c", "while true; do wget -qO- http://127.0.0.1:80/healthz && echo got-it; sleep 0.3; done"]},
    ])
    env.wait_running("duo")
    wait_for(lambda: "got-it" in env.log("duo", "client"), 15, what="client reaching web over localhost")


# --------------------------------------------------------------------------- restarts


def test_crash_loop_backoff_grows_and_previous_logs(env: Env, busybox_image: str) -> None:
    script = "n=$(cat /data/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /data/n; echo attempt-$n; exit 1"
    env.pod("crash", [{"name": "c", "image": busybox_image, "command": ["sh", "-c", script],
                       "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
            volumes=[{"name": "data", "emptyDir": {}}])
    restarts: dict[int, float] = {}
    messages: set[str] = set()
    deadline = time.monotonic() + 25
    while time.monotonic() < deadline and len(restarts) < 5:
        st = env.status("crash")
        restarts.setdefault(st.get("restartCount", 0), time.monotonic())
        waiting = (st.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") == "CrashLoopBackOff":
            messages.add(waiting.get("message", ""))
        time.sleep(0.1)
    st = env.status("crash")
    assert st["phase"] == "Running"
    assert st["lastState"]["terminated"]["exitCode"] == 1 and st["lastState"]["terminated"]["reason"] == "Error"
    assert any("back-off 1s" in m for m in messages) and any("back-off 2s" in m for m in messages), messages
    gaps = [restarts[i + 1] - restarts[i] for i in range(1, 4) if i + 1 in restarts]
    assert len(gaps) >= 2 and gaps[-1] > gaps[0], restarts  # the back-off grows
    assert any(r == "BackOff" and m.startswith("Back-off restarting failed container c in pod crash_default(")
               for r, m in env.events("crash"))
    # --previous: the instance before the current one (the emptyDir survived the restarts)
    current = int(env.log("crash").split("attempt-")[1])
    previous = env.log("crash", previous=True)
    assert previous.startswith("attempt-") and int(previous.split("attempt-")[1]) in (current, current - 1)


def test_restart_policies_on_failure_and_never(env: Env, busybox_image: str) -> None:
    def c(code: int) -> list[dict[str, Any]]:
        return [{"name": "c", "image": busybox_image, "command": ["sh", "-c", f"sleep 0.5; exit {code}"]}]

    env.pod("onfailure-ok", c(0), restartPolicy="OnFailure")
    env.pod("onfailure-bad", c(3), restartPolicy="OnFailure")
    env.pod("never-ok", c(0), restartPolicy="Never")
    env.pod("never-bad", c(2), restartPolicy="Never")
    wait_for(lambda: env.status("onfailure-ok")["phase"] == "Succeeded", 20)
    wait_for(lambda: env.status("never-ok")["phase"] == "Succeeded", 20)
    wait_for(lambda: env.status("never-bad")["phase"] == "Failed", 20)
    wait_for(lambda: env.status("onfailure-bad").get("restartCount", 0) >= 2, 20)
    bad = env.status("never-bad")
    assert bad["state"]["terminated"]["exitCode"] == 2 and bad["restartCount"] == 0
    ok = env.status("onfailure-ok")
    assert ok["state"]["terminated"]["reason"] == "Completed" and ok["restartCount"] == 0
    assert env.status("onfailure-bad")["phase"] == "Running"
    ready = next(c for c in env.get("never-ok").status.conditions or [] if c.type == "Ready")
    assert (ready.status, ready.reason) == ("False", "PodCompleted")
    time.sleep(1.5)
    assert env.status("never-bad")["restartCount"] == 0 and env.status("never-bad")["phase"] == "Failed"
    # the finished pods' sandboxes are stopped; their exited containers stay for logs
    assert env.client.log("default", "never-bad") == ""


# --------------------------------------------------------------------------- probes


def test_failing_liveness_probe_restarts_the_container(env: Env, busybox_image: str) -> None:
    env.pod("live", [{"name": "c", "image": busybox_image,
                      "command": ["sh", "-c", "touch /tmp/healthy; sleep 2; rm /tmp/healthy; sleep 3600"],
                      "livenessProbe": {"exec": {"command": ["cat", "/tmp/healthy"]}, "periodSeconds": 1,
                                        "failureThreshold": 2}}])
    env.wait_running("live")
    wait_for(lambda: env.status("live").get("restartCount", 0) >= 1, 20, what="a liveness restart")
    events = env.events("live")
    assert any(r == "Unhealthy" and m.startswith("Liveness probe failed:") for r, m in events)
    assert ("Killing", "Container c failed liveness probe, will be restarted") in events
    st = env.wait_running("live").status.container_statuses[0]  # type: ignore[index]
    assert st.last_state is not None and st.last_state.terminated is not None


def test_readiness_flips_ready(env: Env, hello_image: str) -> None:
    env.pod("ready", [{"name": "web", "image": hello_image, "readinessProbe": {
        "httpGet": {"path": "/healthz", "port": 80}, "periodSeconds": 1, "failureThreshold": 1}}])
    env.wait_running("ready")

    def pod_ready() -> bool:
        p = env.get("ready")
        return any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])

    wait_for(pod_ready, 15, what="Ready=True")
    assert env.status("ready")["ready"] is True
    url = env.kubelet_url() + "/exec/default/ready/web"
    assert httpx.post(url, params={"command": ["rm", "/www/healthz"]}).json()["exitCode"] == 0
    wait_for(lambda: not pod_ready(), 15, what="Ready=False after /healthz vanished")
    cond = next(c for c in env.get("ready").status.conditions or [] if c.type == "ContainersReady")
    assert cond.status == "False" and cond.message == "containers with unready status: [web]"
    assert env.status("ready")["ready"] is False and env.status("ready")["state"].get("running")
    assert any(r == "Unhealthy" and "Readiness probe failed: HTTP probe failed with statuscode: 404" in m
               for r, m in env.events("ready"))
    assert httpx.post(url, params={"command": ["sh", "-c", "echo ok > /www/healthz"]}).json()["exitCode"] == 0
    wait_for(pod_ready, 15, what="Ready=True again")


# --------------------------------------------------------------------------- config


def test_env_and_volumes_from_configmap_secret_and_services(env: Env, busybox_image: str) -> None:
    env.client.create(ConfigMap(metadata=ObjectMeta(name="settings", namespace="default"),
                                data={"color": "blue", "app.conf": "mode=fast\n"}))
    env.client.create(Secret(metadata=ObjectMeta(name="creds", namespace="default"),
                             data={"password": base64.b64encode(b"hunter2").decode()}))
    svc = env.client.create(Service.from_dict({"metadata": {"name": "backend", "namespace": "default"},
                                               "spec": {"ports": [{"port": 8080}], "selector": {"app": "x"}}}))
    time.sleep(1)  # service variables are those of the services the kubelet knows when the pod starts
    script = ("echo COLOR=$COLOR PASSWORD=$PASSWORD CFG_COLOR=$CFG_color POD=$POD_NAME NODE=$NODE_NAME "
              "SVC=$BACKEND_SERVICE_HOST:$BACKEND_SERVICE_PORT; cat /etc/settings/app.conf; "
              "cat /etc/creds/password; echo; stat -c %a /etc/creds/..password 2>/dev/null || "
              "stat -L -c %a /etc/creds/password; pwd; sleep 3600")
    env.pod("cfg", [{"name": "c", "image": busybox_image, "command": ["sh", "-c", script], "workingDir": "/etc",
                     "env": [{"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "color"}}},
                             {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
                             {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                             {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
                     "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}],
                     "volumeMounts": [{"name": "settings", "mountPath": "/etc/settings"},
                                      {"name": "creds", "mountPath": "/etc/creds", "readOnly": True}]}],
            volumes=[{"name": "settings", "configMap": {"name": "settings"}},
                     {"name": "creds", "secret": {"secretName": "creds", "defaultMode": 0o400}}])
    env.wait_running("cfg")
    ip = svc.spec.cluster_ip
    expected = (f"COLOR=blue PASSWORD=hunter2 CFG_COLOR=blue POD=cfg NODE={env.node} SVC={ip}:8080\n"
                "mode=fast\nhunter2\n400\n/etc\n")
    wait_for(lambda: env.log("cfg").count("\n") >= 5, 10, what="the container's output")
    assert env.log("cfg") == expected


def test_missing_config_key_is_create_container_config_error(env: Env, busybox_image: str) -> None:
    env.pod("nokey", [{"name": "c", "image": busybox_image, "command": ["sleep", "3600"],
                       "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "k"}}}]}])
    wait_for(lambda: (env.status("nokey").get("state") or {}).get("waiting", {}).get("reason")
             == "CreateContainerConfigError", 15)
    env.client.create(ConfigMap(metadata=ObjectMeta(name="absent", namespace="default"), data={"k": "v"}))
    env.wait_running("nokey", timeout=15)


def test_missing_image_does_not_block_other_pods(env: Env, busybox_image: str) -> None:
    env.pod("noimage", [{"name": "c", "image": "127.0.0.1:1/mkube/does-not-exist:1"}])
    env.pod("fine", [{"name": "c", "image": busybox_image, "command": ["sleep", "3600"]}])
    env.wait_running("fine")
    seen: set[str] = set()

    def reasons() -> bool:
        waiting = (env.status("noimage").get("state") or {}).get("waiting") or {}
        seen.add(waiting.get("reason", ""))
        return {"ErrImagePull", "ImagePullBackOff"} <= seen

    wait_for(reasons, 20, interval=0.1, what="ErrImagePull then ImagePullBackOff")
    assert env.status("noimage")["phase"] == "Pending"
    events = env.events("noimage")
    assert ("Pulling", 'Pulling image "127.0.0.1:1/mkube/does-not-exist:1"') in events
    assert ("Failed", "Error: ErrImagePull") in events
    assert ("BackOff", 'Back-off pulling image "127.0.0.1:1/mkube/does-not-exist:1"') in events


# --------------------------------------------------------------------------- deletion and restarts


def test_delete_stops_containers_within_the_grace_period(env: Env, busybox_image: str, hello_image: str) -> None:
    # `sh -c` as PID 1 ignores SIGTERM: the kubelet must wait the grace period, then SIGKILL
    stubborn = ["stubborn-1", "stubborn-2"]
    for name in stubborn:
        env.pod(name, [{"name": "c", "image": busybox_image, "command": ["sh", "-c", "sleep 3600"]}],
                terminationGracePeriodSeconds=3)
    env.pod("polite", [{"name": "web", "image": hello_image}], terminationGracePeriodSeconds=30)
    for name in [*stubborn, "polite"]:
        env.wait_running(name)
    t0 = time.monotonic()
    for name in [*stubborn, "polite"]:
        env.client.delete(Pod, name, "default")
    wait_for(lambda: not env.client.exists(Pod, "polite", "default"), 10, interval=0.05)
    polite = time.monotonic() - t0
    wait_for(lambda: not any(env.client.exists(Pod, n, "default") for n in stubborn), 15, interval=0.05)
    took = time.monotonic() - t0
    assert polite < 3, polite  # exits on SIGTERM at once
    assert 2.5 <= took < 3 + 4, took  # waited the grace period (both pods at once), not 30 s
    assert not env.containers()
    assert ("Killing", "Stopping container c") in env.events("stubborn-1")


def test_kill9_and_restart_adopts_running_containers(env: Env, busybox_image: str) -> None:
    env.pod("survivor", [{"name": "c", "image": busybox_image, "command": ["sh", "-c", "sleep 1; exit 1"]}],
            restartPolicy="OnFailure")
    env.pod("steady", [{"name": "a", "image": busybox_image, "command": ["sleep", "3600"]},
                       {"name": "b", "image": busybox_image, "command": ["sleep", "3600"]}])
    env.wait_running("steady")
    wait_for(lambda: env.status("survivor").get("restartCount", 0) >= 1, 20)
    pod = env.client.patch(Pod, "survivor", {"spec": {"containers": [
        {"name": "c", "image": busybox_image, "command": ["sh", "-c", "sleep 1; exit 1"]}]}})  # no-op
    assert pod is not None
    env.kubelet.kill9()
    before_ids = sorted(c["Id"] for c in env.containers())
    steady = env.get("steady").status.to_dict()["containerStatuses"]
    survivor = env.status("survivor")["restartCount"]
    env.kubelet.start()
    time.sleep(4)  # several relists and syncs
    after = env.get("steady").status.to_dict()["containerStatuses"]
    assert [(c["containerID"], c["restartCount"]) for c in after] == [
        (c["containerID"], c["restartCount"]) for c in steady]
    assert all(c["ready"] for c in after)
    running = [c for c in env.containers() if c["State"] == "running"]
    assert len([c for c in running if c["Labels"].get("io.mkube.pod.name") == "steady"]) == 3  # pause + 2
    assert sorted(c["Id"] for c in env.containers() if c["Labels"].get("io.mkube.pod.name") == "steady") == sorted(
        c["Id"] for c in env.docker.api.containers(all=True, filters={"id": before_ids})
        if c["Labels"].get("io.mkube.pod.name") == "steady")
    assert env.status("survivor")["restartCount"] >= survivor  # counted on, from the attempt labels
