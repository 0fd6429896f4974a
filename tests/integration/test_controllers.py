"""The controller manager against a real API server, with hollow nodes and the real scheduler.

Pods are counted as the user would: `kubectl get pods` minus those being deleted
(Kubernetes' maxSurge does not count terminating pods either).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mkube.api.errors import NotFound
from mkube.api.types import (
    ContainerPort,
    Deployment,
    Endpoints,
    Event,
    Node,
    ObjectMeta,
    Pod,
    ReplicaSet,
    Service,
    ServicePort,
    ServiceSpec,
)
from mkube.client import Client
from mkube.controllers import deployment_util as du
from mkube.controllers.endpoints_util import PUBLISHED_ANNOTATION
from mkube.controllers.manager import ControllerManager
from mkube.controllers.options import ControllerOptions
from tests.fixtures.apiserver import ApiServerProcess
from tests.integration.hollow import HollowNodes, PodSampler
from tests.unit.controllers.harness import deployment

REPO = Path(__file__).resolve().parents[2]
KUBECTL = shutil.which("kubectl")


def wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def rolled_out(client: Client, name: str = "web", namespace: str = "default") -> bool:
    """What `kubectl rollout status` checks."""
    d = client.get(Deployment, name, namespace)
    s = d.status
    want = du.replicas_of(d)
    return ((s.observed_generation or 0) >= (d.metadata.generation or 0) and (s.updated_replicas or 0) == want
            and (s.replicas or 0) == want and (s.available_replicas or 0) == want)


def live_pods(client: Client, selector: str = "app=web") -> list[Pod]:
    return [p for p in client.list(Pod, "default", label_selector=selector).items
            if p.metadata.deletion_timestamp is None]


def is_ready(pod: Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


@pytest.fixture
def client(api_server: ApiServerProcess) -> Iterator[Client]:
    c = Client(api_server.url)
    yield c
    c.close()


@pytest.fixture
def manager(api_server: ApiServerProcess) -> Iterator[Callable[..., ControllerManager]]:
    made: list[tuple[ControllerManager, Client]] = []

    def make(**opts: object) -> ControllerManager:
        c = Client(api_server.url)
        m = ControllerManager(c, ControllerOptions(**opts))  # type: ignore[arg-type]
        m.start()
        made.append((m, c))
        return m

    yield make
    for m, c in made:
        m.stop()
        c.close()


def kubectl(server: str, *args: str) -> str:
    assert KUBECTL, "kubectl must be on PATH"
    out = subprocess.run([KUBECTL, "--server", server, *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_deployment_rollout_rollback_and_scale(api_server: ApiServerProcess, client: Client,
                                               manager: Callable[..., ControllerManager]) -> None:
    manager()
    with HollowNodes(api_server.url, 5):
        client.create(deployment(replicas=10, max_surge="25%", max_unavailable="25%"))
        wait_for(lambda: rolled_out(client), 30, "10 pods ready")
        assert sum(is_ready(p) for p in live_pods(client)) == 10
        first_rs = client.list(ReplicaSet, "default").items[0]

        # image change: sample the pods through a watch for the whole rollout
        with PodSampler(api_server.url, "app=web") as sampler:
            kubectl(api_server.url, "set", "image", "deployment/web", "app=nginx:2")
            wait_for(lambda: rolled_out(client) and client.get(Deployment, "web", "default").status.observed_generation
                     == 2, 30, "rollout of nginx:2")
            time.sleep(0.3)
        assert sampler.max_pods() <= 10 + 3, sampler.samples
        assert sampler.min_ready() >= 10 - 2, sampler.samples
        assert len(sampler.samples) > 20  # it really watched the rollout
        pods = live_pods(client)
        assert len(pods) == 10 and all(p.spec.containers[0].image == "nginx:2" for p in pods)

        # rollback with the real kubectl: the old ReplicaSet is scaled up again, revision 3
        kubectl(api_server.url, "rollout", "undo", "deployment/web")
        wait_for(lambda: rolled_out(client) and all(p.spec.containers[0].image == "nginx:1"
                                                    for p in live_pods(client)), 30, "rollback")
        rss = {rs.metadata.name: rs for rs in client.list(ReplicaSet, "default").items}
        assert len(rss) == 2
        back = rss[first_rs.metadata.name]
        assert back.spec.replicas == 10 and du.revision_of(back) == 3
        assert du.revision_of(client.get(Deployment, "web", "default")) == 3
        assert "nginx:1" in kubectl(api_server.url, "rollout", "history", "deployment/web", "--revision=3")

        # scale through the scale subresource: 10 -> 3 -> 12
        for n in (3, 12):
            client.update_scale(Deployment, "web", n, "default")
            wait_for(lambda n=n: rolled_out(client) and len(live_pods(client)) == n, 30, f"scale to {n}")  # type: ignore[misc]
            assert sum(is_ready(p) for p in live_pods(client)) == n
        d = client.get(Deployment, "web", "default")
        conds = {c.type: (c.status, c.reason) for c in d.status.conditions or []}
        assert conds["Available"] == ("True", "MinimumReplicasAvailable")
        assert conds["Progressing"] == ("True", "NewReplicaSetAvailable")
        reasons = {e.reason for e in client.list(Event, "default").items}
        assert {"ScalingReplicaSet", "SuccessfulCreate", "SuccessfulDelete", "DeploymentRollback"} <= reasons


def test_failing_readiness_stalls_rollout_and_exceeds_deadline(api_server: ApiServerProcess, client: Client,
                                                               manager: Callable[..., ControllerManager]) -> None:
    manager()

    def ready(pod: Pod) -> bool:
        return not (pod.spec.containers[0].image or "").startswith("broken")

    with HollowNodes(api_server.url, 4, ready=ready):
        client.create(deployment(replicas=6, max_surge=1, max_unavailable=1, progress_deadline_seconds=3))
        wait_for(lambda: rolled_out(client), 30, "6 pods ready")
        with PodSampler(api_server.url, "app=web") as sampler:
            kubectl(api_server.url, "set", "image", "deployment/web", "app=broken:2")

            def timed_out() -> bool:
                cond = du.get_condition(client.get(Deployment, "web", "default").status, du.PROGRESSING)
                return cond is not None and cond.reason == "ProgressDeadlineExceeded"

            wait_for(timed_out, 20, "ProgressDeadlineExceeded")
        assert sampler.min_ready() >= 5  # the old pods kept serving
        assert sampler.max_pods() <= 7
        d = client.get(Deployment, "web", "default")
        cond = du.get_condition(d.status, du.PROGRESSING)
        assert cond is not None and cond.status == "False" and "has timed out progressing" in (cond.message or "")
        ready_pods = [p for p in live_pods(client) if is_ready(p)]
        assert len(ready_pods) == 5 and all(p.spec.containers[0].image == "nginx:1" for p in ready_pods)
        out = subprocess.run([KUBECTL or "kubectl", "--server", api_server.url, "rollout", "status",
                              "deployment/web", "--timeout=5s"], capture_output=True, text=True, timeout=30)
        assert out.returncode != 0 and "exceeded its progress deadline" in out.stderr


def test_dead_node_pods_are_recreated_elsewhere(api_server: ApiServerProcess, client: Client,
                                                manager: Callable[..., ControllerManager]) -> None:
    manager(node_monitor_grace_period=2.0, node_monitor_period=0.5, pod_eviction_timeout=2)
    with HollowNodes(api_server.url, 4, heartbeat=0.5) as nodes:
        client.create(deployment(replicas=8))
        wait_for(lambda: rolled_out(client), 30, "8 pods ready")
        victim = "hollow-1"
        doomed = {p.metadata.name for p in live_pods(client) if p.spec.node_name == victim}
        assert doomed, "the scheduler should have spread pods over every node"
        nodes.stop_node(victim)

        def node_unknown() -> bool:
            cond = client.get(Node, victim).condition("Ready")
            return cond is not None and cond.status == "Unknown"

        wait_for(node_unknown, 15, f"{victim} Ready=Unknown")
        cond = client.get(Node, victim).condition("Ready")
        assert cond is not None and cond.reason == "NodeStatusUnknown"
        unreachable = {("node.kubernetes.io/unreachable", "NoSchedule"), ("node.kubernetes.io/unreachable", "NoExecute")}
        wait_for(lambda: {(t.key, t.effect) for t in client.get(Node, victim).spec.taints or []} == unreachable,
                 10, "unreachable taints")

        def replaced() -> bool:
            pods = live_pods(client)
            return (len(pods) == 8 and all(p.spec.node_name != victim for p in pods)
                    and all(is_ready(p) for p in pods))

        wait_for(replaced, 30, "pods recreated on the other nodes")
        wait_for(lambda: rolled_out(client), 10, "deployment status caught up")
        reasons = [(e.reason, e.message) for e in client.list(Event, "default").items]
        assert any(r == "TaintManagerEviction" and (m or "").startswith("Marking for deletion Pod default/web-")
                   for r, m in reasons)
        assert any(e.reason == "NodeNotReady" for e in client.list(Event).items)
        # the node comes back: its taints go
        nodes.start_node(victim)
        wait_for(lambda: not client.get(Node, victim).spec.taints, 15, "taints removed")


def test_deleting_a_deployment_leaves_nothing(api_server: ApiServerProcess, client: Client,
                                              manager: Callable[..., ControllerManager]) -> None:
    manager()
    with HollowNodes(api_server.url, 3):
        client.create(deployment(replicas=6))
        other = deployment(name="api", replicas=3)
        client.create(other)
        wait_for(lambda: rolled_out(client) and rolled_out(client, "api"), 30, "both deployments ready")
        kubectl(api_server.url, "delete", "deployment", "web")
        client.delete(Deployment, "api", "default", propagation_policy="Foreground")
        wait_for(lambda: not client.list(ReplicaSet, "default").items and not client.list(Pod, "default").items,
                 30, "ReplicaSets and pods gone")
        wait_for(lambda: not client.list(Deployment, "default").items, 10, "foreground-deleted deployment gone")


def test_endpoints_follow_a_deployment(api_server: ApiServerProcess, client: Client,
                                       manager: Callable[..., ControllerManager]) -> None:
    manager()
    with HollowNodes(api_server.url, 3):
        d = deployment(replicas=4)
        d.spec.template.spec.containers[0].ports = [ContainerPort(name="http", container_port=8080)]
        client.create(d)
        client.create(Service(metadata=ObjectMeta(name="web", namespace="default"),
                              spec=ServiceSpec(selector={"app": "web"},
                                               ports=[ServicePort(port=80, target_port="http")])))

        def four_ready() -> bool:
            try:
                ep = client.get(Endpoints, "web", "default")
            except NotFound:
                return False
            return sum(len(s.addresses or []) for s in ep.subsets or []) == 4

        wait_for(four_ready, 30, "4 ready endpoints")
        ep = client.get(Endpoints, "web", "default")
        pods = {p.metadata.name: p for p in live_pods(client)}
        (subset,) = ep.subsets or []
        assert [p.port for p in subset.ports or []] == [8080]
        for addr in subset.addresses or []:
            pod = pods[addr.target_ref.name]  # type: ignore[union-attr,index]
            assert addr.ip == pod.status.pod_ip and addr.node_name == pod.spec.node_name
        published = json.loads((ep.metadata.annotations or {})[PUBLISHED_ANNOTATION])
        assert len(published) == 4
        assert {e["hostIP"] for e in published} <= {p.status.host_ip for p in pods.values()}
        client.delete(Service, "web", "default")
        wait_for(lambda: not client.exists(Endpoints, "web", "default"), 10, "endpoints deleted with the service")


def _start_cm(url: str, log: Path) -> subprocess.Popen[bytes]:
    out = open(log, "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen([sys.executable, "-m", "mkube.controllers.main", "--server", url], cwd=REPO,
                            stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    out.close()
    return proc


def test_killed_controller_manager_converges_without_extra_pods(api_server: ApiServerProcess, client: Client,
                                                                tmp_path: Path) -> None:
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(_start_cm(api_server.url, tmp_path / "cm.log"))
        with HollowNodes(api_server.url, 5, ready_after=0.4):
            client.create(deployment(replicas=10, max_surge=2, max_unavailable=1))
            wait_for(lambda: rolled_out(client), 60, "10 pods ready")
            with PodSampler(api_server.url, "app=web") as sampler:
                kubectl(api_server.url, "set", "image", "deployment/web", "app=nginx:2")
                wait_for(lambda: any(p.spec.containers[0].image == "nginx:2" and is_ready(p)
                                     for p in live_pods(client)), 30, "rollout under way")
                procs[-1].send_signal(signal.SIGKILL)
                procs[-1].wait(10)
                assert not rolled_out(client)  # killed mid-rollout
                time.sleep(1.0)
                procs.append(_start_cm(api_server.url, tmp_path / "cm.log"))
                wait_for(lambda: rolled_out(client) and client.get(Deployment, "web", "default")
                         .status.observed_generation == 2, 60, "rollout finished after restart")
                time.sleep(0.5)
            assert sampler.max_pods() <= 12, sampler.samples
            assert sampler.min_ready() >= 9, sampler.samples
            pods = live_pods(client)
            assert len(pods) == 10 and all(p.spec.containers[0].image == "nginx:2" for p in pods)
            assert len(client.list(ReplicaSet, "default").items) == 2
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()


def test_hundred_deployments_on_fifty_nodes(api_server: ApiServerProcess, client: Client,
                                            manager: Callable[..., ControllerManager]) -> None:
    manager()
    with HollowNodes(api_server.url, 50, heartbeat=5.0, workers=16):
        start = time.monotonic()
        for i in range(100):
            client.create(deployment(name=f"app-{i}", replicas=10))

        def all_available() -> bool:
            ds = client.list(Deployment, "default").items
            return len(ds) == 100 and all(rolled_out(client, d.metadata.name or "") for d in ds[:1]) and all(
                (d.status.available_replicas or 0) == 10 and (d.status.updated_replicas or 0) == 10 for d in ds)

        wait_for(all_available, 100, "100 deployments x 10 available")
        elapsed = time.monotonic() - start
        pods = client.list(Pod, "default").items
        assert len(pods) == 1000
        assert len({p.spec.node_name for p in pods}) == 50
        assert len(client.list(ReplicaSet, "default").items) == 100
        print(f"100 x 10 converged in {elapsed:.1f}s")


def _start_kubelet(url: str, prefix: str, count: int, root: Path) -> subprocess.Popen[bytes]:
    out = open(root.parent / f"kubelet-{prefix}.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen([sys.executable, "-m", "mkube.kubelet", "--server", url, "--node-name", prefix,
                             "--node-ip", "127.0.0.1", "--port", "0", "--runtime", "fake", "--hollow-nodes", str(count),
                             "--root-dir", str(root), "--lease-renew-interval", "1", "--node-status-update-frequency",
                             "1", "--node-status-report-frequency", "2"],
                            cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    out.close()
    return proc


def test_real_hollow_kubelets_rollout_and_node_loss(api_server: ApiServerProcess, client: Client, tmp_path: Path,
                                                    manager: Callable[..., ControllerManager]) -> None:
    """The same, with `mkube kubelet --runtime fake --hollow-nodes N` processes as the nodes."""
    from mkube.scheduler.scheduler import Scheduler

    kubelets = [_start_kubelet(api_server.url, "a", 3, tmp_path / "a"),
                _start_kubelet(api_server.url, "b", 1, tmp_path / "b")]
    sched_client = Client(api_server.url)
    scheduler = Scheduler(sched_client, seed=1)
    try:
        def nodes_ready() -> bool:
            conds = [n.condition("Ready") for n in client.list(Node).items]
            return len(conds) == 4 and all(c is not None and c.status == "True" for c in conds)

        wait_for(nodes_ready, 30, "4 hollow nodes Ready")
        scheduler.start()
        manager(node_monitor_grace_period=3.0, node_monitor_period=0.5, pod_eviction_timeout=2)
        client.create(deployment(replicas=8, max_surge=2, max_unavailable=1))
        wait_for(lambda: rolled_out(client), 60, "8 pods ready on hollow kubelets")
        with PodSampler(api_server.url, "app=web") as sampler:
            kubectl(api_server.url, "set", "image", "deployment/web", "app=nginx:2")
            wait_for(lambda: rolled_out(client) and client.get(Deployment, "web", "default").status.observed_generation
                     == 2, 60, "rollout on hollow kubelets")
        assert sampler.max_pods() <= 10 and sampler.min_ready() >= 7, sampler.samples
        assert {p.spec.node_name for p in live_pods(client)} & {"b-0"}, "the scheduler should use b-0 too"
        kubelets[1].send_signal(signal.SIGKILL)  # the machine of node b-0 dies
        kubelets[1].wait(10)

        def moved() -> bool:
            pods = live_pods(client)
            return len(pods) == 8 and all(p.spec.node_name != "b-0" and is_ready(p) for p in pods)

        wait_for(moved, 40, "pods recreated on the a-* nodes")
        cond = client.get(Node, "b-0").condition("Ready")
        assert cond is not None and cond.status == "Unknown"
        wait_for(lambda: rolled_out(client), 15, "deployment available again")
    finally:
        scheduler.stop()
        sched_client.close()
        for k in kubelets:
            if k.poll() is None:
                k.terminate()
                try:
                    k.wait(15)
                except subprocess.TimeoutExpired:
                    k.kill()
