"""Each plugin on its own: what it accepts, what it rejects and the reason text."""

from __future__ import annotations

from typing import Any

import pytest

from mkube.api.types import Taint, Toleration
from mkube.scheduler.framework import NodeInfo, PodInfo, Snapshot
from mkube.scheduler.plugins import (
    NodeAffinity,
    NodeName,
    NodePorts,
    NodeReady,
    NodeResourcesFit,
    NodeResourcesLeastAllocated,
    NodeUnschedulable,
    OwnerSpread,
    TaintToleration,
)
from mkube.scheduler.plugins.helpers import default_normalize, tolerates
from mkube.scheduler.status import SKIP, SUCCESS, Code, Status
from tests.unit.scheduler.builders import make_node, make_pod


def info(node: Any, *pods: Any) -> NodeInfo:
    ni = NodeInfo(node)
    for p in pods:
        ni = ni.with_pod(PodInfo(p))
    return ni


def run_filter(plugin: Any, pod: Any, node_info: NodeInfo) -> Status:
    pi = PodInfo(pod)
    pre = getattr(plugin, "pre_filter", None)
    if pre is not None and pre(pi) is SKIP:
        return SUCCESS
    return plugin.filter(pi, node_info)  # type: ignore[no-any-return]


# ---------------------------------------------------------------- NodeUnschedulable
def test_cordoned_node_rejects_unless_tolerated() -> None:
    plugin = NodeUnschedulable()
    cordoned = info(make_node("n", unschedulable=True))
    st = run_filter(plugin, make_pod("p"), cordoned)
    assert st.code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert st.reasons == ("node(s) were unschedulable",)
    tolerant = make_pod("p", tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
                                           "effect": "NoSchedule"}])
    assert run_filter(plugin, tolerant, cordoned) is SUCCESS
    assert run_filter(plugin, make_pod("p"), info(make_node("n"))) is SUCCESS


# ---------------------------------------------------------------- NodeReady
@pytest.mark.parametrize("ready", ["False", "Unknown", None])
def test_not_ready_node_rejects(ready: str | None) -> None:
    st = run_filter(NodeReady(), make_pod("p"), info(make_node("n", ready=ready)))
    assert st.reasons == ("node(s) were not ready",)
    assert st.rejected


def test_not_ready_tolerated_by_matching_taint_toleration() -> None:
    not_ready = make_pod("p", tolerations=[{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}])
    unreachable = make_pod("p", tolerations=[{"key": "node.kubernetes.io/unreachable", "operator": "Exists"}])
    assert run_filter(NodeReady(), not_ready, info(make_node("n", ready="False"))) is SUCCESS
    assert run_filter(NodeReady(), unreachable, info(make_node("n", ready="Unknown"))) is SUCCESS
    assert run_filter(NodeReady(), unreachable, info(make_node("n", ready="False"))).rejected
    assert run_filter(NodeReady(), make_pod("p"), info(make_node("n", ready="True"))) is SUCCESS


def test_not_ready_taint_is_honoured_by_taint_toleration() -> None:
    node = info(make_node("n", taints=[{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]))
    st = run_filter(TaintToleration(), make_pod("p"), node)
    assert st.reasons == ("node(s) had untolerated taint {node.kubernetes.io/not-ready: }",)


# ---------------------------------------------------------------- NodeName
def test_node_name() -> None:
    plugin = NodeName()
    assert plugin.pre_filter(PodInfo(make_pod("p"))) is SKIP
    pinned = make_pod("p", nodeName="n2")
    assert run_filter(plugin, pinned, info(make_node("n2"))) is SUCCESS
    st = run_filter(plugin, pinned, info(make_node("n1")))
    assert st.reasons == ("node(s) didn't match the requested node name",)
    assert st.code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE


# ---------------------------------------------------------------- NodeAffinity
def required(*exprs: dict[str, Any], fields: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    term: dict[str, Any] = {"matchExpressions": list(exprs)}
    if fields:
        term["matchFields"] = fields
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}


AFFINITY_REASON = "node(s) didn't match Pod's node affinity/selector"


def test_node_selector() -> None:
    pod = make_pod("p", nodeSelector={"disk": "ssd", "zone": "a"})
    assert run_filter(NodeAffinity(), pod, info(make_node("n", labels={"disk": "ssd", "zone": "a"}))) is SUCCESS
    st = run_filter(NodeAffinity(), pod, info(make_node("n", labels={"disk": "ssd", "zone": "b"})))
    assert st.reasons == (AFFINITY_REASON,)
    assert st.code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE


@pytest.mark.parametrize(("expr", "labels", "fits"), [
    ({"key": "zone", "operator": "In", "values": ["a", "b"]}, {"zone": "b"}, True),
    ({"key": "zone", "operator": "In", "values": ["a", "b"]}, {"zone": "c"}, False),
    ({"key": "zone", "operator": "In", "values": ["a"]}, {}, False),
    ({"key": "zone", "operator": "NotIn", "values": ["a"]}, {"zone": "b"}, True),
    ({"key": "zone", "operator": "NotIn", "values": ["a"]}, {"zone": "a"}, False),
    ({"key": "zone", "operator": "NotIn", "values": ["a"]}, {}, True),
    ({"key": "gpu", "operator": "Exists"}, {"gpu": ""}, True),
    ({"key": "gpu", "operator": "Exists"}, {}, False),
    ({"key": "gpu", "operator": "DoesNotExist"}, {}, True),
    ({"key": "gpu", "operator": "DoesNotExist"}, {"gpu": "1"}, False),
    ({"key": "cores", "operator": "Gt", "values": ["4"]}, {"cores": "8"}, True),
    ({"key": "cores", "operator": "Gt", "values": ["4"]}, {"cores": "4"}, False),
    ({"key": "cores", "operator": "Gt", "values": ["4"]}, {"cores": "many"}, False),
    ({"key": "cores", "operator": "Gt", "values": ["4"]}, {}, False),
    ({"key": "cores", "operator": "Lt", "values": ["4"]}, {"cores": "2"}, True),
    ({"key": "cores", "operator": "Lt", "values": ["4"]}, {"cores": "4"}, False),
    ({"key": "cores", "operator": "Lt", "values": ["x"]}, {"cores": "2"}, False),
])
def test_required_affinity_operators(expr: dict[str, Any], labels: dict[str, str], fits: bool) -> None:
    st = run_filter(NodeAffinity(), make_pod("p", affinity=required(expr)), info(make_node("n", labels=labels)))
    assert (st is SUCCESS) == fits


def test_affinity_terms_are_ored_and_requirements_anded() -> None:
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]},
                              {"key": "disk", "operator": "In", "values": ["ssd"]}]},
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]},
    ]}}}
    pod = make_pod("p", affinity=affinity)
    assert run_filter(NodeAffinity(), pod, info(make_node("n", labels={"zone": "a", "disk": "ssd"}))) is SUCCESS
    assert run_filter(NodeAffinity(), pod, info(make_node("n", labels={"zone": "a", "disk": "hdd"}))).rejected
    assert run_filter(NodeAffinity(), pod, info(make_node("n", labels={"zone": "b"}))) is SUCCESS


def test_affinity_match_fields_and_selector_combined() -> None:
    pod = make_pod("p", nodeSelector={"zone": "a"},
                   affinity=required(fields=[{"key": "metadata.name", "operator": "In", "values": ["n1"]}]))
    assert run_filter(NodeAffinity(), pod, info(make_node("n1", labels={"zone": "a"}))) is SUCCESS
    assert run_filter(NodeAffinity(), pod, info(make_node("n2", labels={"zone": "a"}))).rejected
    assert run_filter(NodeAffinity(), pod, info(make_node("n1", labels={"zone": "b"}))).rejected


def test_empty_term_matches_nothing_and_no_constraint_skips() -> None:
    affinity: dict[str, Any] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{}]}}}
    assert run_filter(NodeAffinity(), make_pod("p", affinity=affinity), info(make_node("n"))).rejected
    assert NodeAffinity().pre_filter(PodInfo(make_pod("p"))) is SKIP


def test_preferred_affinity_score() -> None:
    affinity = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 80, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}},
        {"weight": 20, "preference": {"matchExpressions": [{"key": "disk", "operator": "Exists"}]}},
    ]}}
    plugin = NodeAffinity()
    pod = PodInfo(make_pod("p", affinity=affinity))
    nodes = [info(make_node("a", labels={"zone": "a", "disk": "ssd"})), info(make_node("b", labels={"zone": "a"})),
             info(make_node("c", labels={"disk": "x"})), info(make_node("d"))]
    assert plugin.pre_score(pod, nodes, Snapshot(nodes)) is SUCCESS
    scores = [plugin.score(pod, n) for n in nodes]
    assert scores == [100, 80, 20, 0]
    plugin.normalize(pod, scores)
    assert scores == [100, 80, 20, 0]
    assert plugin.pre_score(PodInfo(make_pod("q")), nodes, Snapshot(nodes)) is SKIP


# ---------------------------------------------------------------- TaintToleration
def test_untolerated_taint_reason_names_the_taint() -> None:
    node = info(make_node("n", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]))
    st = run_filter(TaintToleration(), make_pod("p"), node)
    assert st.reasons == ("node(s) had untolerated taint {dedicated: gpu}",)
    assert st.code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE


@pytest.mark.parametrize(("toleration", "fits"), [
    ({"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}, True),
    ({"key": "dedicated", "value": "gpu"}, True),  # default operator Equal, any effect
    ({"key": "dedicated", "operator": "Exists"}, True),
    ({"operator": "Exists"}, True),  # tolerates everything
    ({"key": "dedicated", "operator": "Equal", "value": "cpu"}, False),
    ({"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}, False),
    ({"key": "other", "operator": "Exists"}, False),
])
def test_toleration_matching(toleration: dict[str, str], fits: bool) -> None:
    node = info(make_node("n", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]))
    assert (run_filter(TaintToleration(), make_pod("p", tolerations=[toleration]), node) is SUCCESS) == fits


def test_no_execute_taints_filter_and_prefer_no_schedule_do_not() -> None:
    no_exec = info(make_node("n", taints=[{"key": "k", "effect": "NoExecute"}]))
    assert run_filter(TaintToleration(), make_pod("p"), no_exec).reasons == ("node(s) had untolerated taint {k: }",)
    soft = info(make_node("n", taints=[{"key": "k", "effect": "PreferNoSchedule"}]))
    assert run_filter(TaintToleration(), make_pod("p"), soft) is SUCCESS


def test_prefer_no_schedule_score() -> None:
    plugin = TaintToleration()
    nodes = [info(make_node("a")),
             info(make_node("b", taints=[{"key": "x", "effect": "PreferNoSchedule"}])),
             info(make_node("c", taints=[{"key": "x", "effect": "PreferNoSchedule"},
                                         {"key": "y", "effect": "PreferNoSchedule"}]))]
    pod = PodInfo(make_pod("p"))
    assert plugin.pre_score(pod, nodes, Snapshot(nodes)) is SUCCESS
    scores = [plugin.score(pod, n) for n in nodes]
    assert scores == [0, 1, 2]
    plugin.normalize(pod, scores)
    assert scores == [100, 50, 0]
    tolerant = PodInfo(make_pod("p", tolerations=[{"key": "x", "operator": "Exists", "effect": "PreferNoSchedule"}]))
    assert [plugin.score(tolerant, n) for n in nodes] == [0, 0, 1]
    plain = [info(make_node("a"))]
    assert plugin.pre_score(pod, plain, Snapshot(plain)) is SKIP


def test_tolerates_helper_unknown_operator() -> None:
    assert not tolerates(Toleration(key="k", operator="Bogus"), Taint(key="k", effect="NoSchedule"))


# ---------------------------------------------------------------- NodeResourcesFit
def test_insufficient_cpu_and_memory_both_reported() -> None:
    node = info(make_node("n", cpu="1", memory="1Gi"), make_pod("a", cpu="800m", memory="768Mi"))
    st = run_filter(NodeResourcesFit(), make_pod("p", cpu="300m", memory="512Mi"), node)
    assert st.code is Code.UNSCHEDULABLE
    assert st.reasons == ("Insufficient cpu", "Insufficient memory")
    assert run_filter(NodeResourcesFit(), make_pod("p", cpu="200m", memory="256Mi"), node) is SUCCESS


def test_too_many_pods() -> None:
    node = info(make_node("n", pods=2), make_pod("a"), make_pod("b"))
    assert run_filter(NodeResourcesFit(), make_pod("p", cpu=None, memory=None), node).reasons == ("Too many pods",)


def test_requests_from_init_containers_take_the_max() -> None:
    pod = make_pod("p", cpu="100m", memory="100Mi", initContainers=[
        {"name": "init", "image": "i", "resources": {"requests": {"cpu": "2", "memory": "50Mi"}}}])
    pi = PodInfo(pod)
    assert (pi.cpu, pi.memory) == (2000, 100 * 1024 * 1024)
    st = run_filter(NodeResourcesFit(), pod, info(make_node("n", cpu="1500m")))
    assert st.reasons == ("Insufficient cpu",)


def test_requests_sum_containers_and_fall_back_to_limits() -> None:
    pod = make_pod("p", cpu="250m", memory="64Mi")
    pod.spec.containers.append(pod.spec.containers[0].model_copy(update={"name": "d", "resources": None}))
    pod.spec.containers[1] = pod.spec.containers[1].model_validate(
        {"name": "d", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}})
    pi = PodInfo(pod)
    assert (pi.cpu, pi.memory) == (1250, 64 * 1024 * 1024 + 1024**3)


def test_pod_without_requests_fits_anywhere_with_room_for_a_pod() -> None:
    node = info(make_node("n", cpu="0", memory="0"))
    assert run_filter(NodeResourcesFit(), make_pod("p", cpu=None, memory=None), node) is SUCCESS


# ---------------------------------------------------------------- NodePorts
def test_host_port_conflicts() -> None:
    node = info(make_node("n"), make_pod("a", host_port=8080))
    st = run_filter(NodePorts(), make_pod("p", host_port=8080), node)
    assert st.reasons == ("node(s) didn't have free ports for the requested pod ports",)
    assert st.code is Code.UNSCHEDULABLE
    assert run_filter(NodePorts(), make_pod("p", host_port=8081), node) is SUCCESS
    assert NodePorts().pre_filter(PodInfo(make_pod("p"))) is SKIP


def test_host_port_ip_and_protocol_rules() -> None:
    def pod(name: str, ip: str | None, proto: str = "TCP") -> Any:
        p = make_pod(name)
        port: dict[str, Any] = {"containerPort": 53, "hostPort": 53, "protocol": proto}
        if ip:
            port["hostIP"] = ip
        p.spec.containers[0] = p.spec.containers[0].model_validate({"name": "c", "ports": [port]})
        return p

    node = info(make_node("n"), pod("a", "10.0.0.1"))
    assert run_filter(NodePorts(), pod("p", "10.0.0.2"), node) is SUCCESS
    assert run_filter(NodePorts(), pod("p", "10.0.0.1"), node).rejected
    assert run_filter(NodePorts(), pod("p", None), node).rejected  # wildcard overlaps every IP
    assert run_filter(NodePorts(), pod("p", "10.0.0.1", "UDP"), node) is SUCCESS
    # removing the pod frees its port
    assert run_filter(NodePorts(), pod("p", "10.0.0.1"), node.without_pod("default/a")) is SUCCESS


def test_host_network_pods_use_their_container_ports() -> None:
    hn = make_pod("a", hostNetwork=True)
    hn.spec.containers[0] = hn.spec.containers[0].model_validate({"name": "c", "ports": [{"containerPort": 9100}]})
    assert PodInfo(hn).host_ports[0].port == 9100


# ---------------------------------------------------------------- scores
def test_least_allocated_prefers_emptier_nodes() -> None:
    plugin = NodeResourcesLeastAllocated()
    pod = PodInfo(make_pod("p", cpu="1", memory="1Gi"))
    empty = info(make_node("a", cpu="4", memory="4Gi"))
    half = info(make_node("b", cpu="4", memory="4Gi"), make_pod("x", cpu="1", memory="1Gi"))
    assert plugin.score(pod, empty) == 75  # (3/4 cpu free + 3/4 memory free) / 2
    assert plugin.score(pod, half) == 50
    assert plugin.score(pod, info(make_node("c", cpu="0", memory="0"))) == 0


def test_least_allocated_counts_request_less_pods_as_defaults() -> None:
    pod = PodInfo(make_pod("p", cpu=None, memory=None))
    assert (pod.nonzero_cpu, pod.nonzero_memory) == (100, 200 * 1024 * 1024)
    assert (pod.cpu, pod.memory) == (0, 0)


def test_owner_spread() -> None:
    plugin = OwnerSpread()
    a = info(make_node("a"), make_pod("r1", owner="rs"), make_pod("r2", owner="rs"))
    b = info(make_node("b"), make_pod("r3", owner="rs"), make_pod("o1", owner="other"))
    c = info(make_node("c"))
    pod = PodInfo(make_pod("new", owner="rs"))
    nodes = [a, b, c]
    assert plugin.pre_score(pod, nodes, Snapshot(nodes)) is SUCCESS
    scores = [plugin.score(pod, n) for n in nodes]
    assert scores == [2, 1, 0]
    plugin.normalize(pod, scores)
    assert scores == [0, 50, 100]
    assert plugin.pre_score(PodInfo(make_pod("orphan")), nodes, Snapshot(nodes)) is SKIP


def test_default_normalize() -> None:
    s = [0, 5, 10]
    default_normalize(s)
    assert s == [0, 50, 100]
    z = [0, 0]
    default_normalize(z, reverse=True)
    assert z == [100, 100]


def test_filter_all_agrees_with_filter() -> None:
    nodes = [info(make_node("plain")), info(make_node("cordoned", unschedulable=True)),
             info(make_node("notready", ready="False")), info(make_node("unknown", ready="Unknown")),
             info(make_node("tainted", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}])),
             info(make_node("full", cpu="1", pods=1), make_pod("x", cpu="900m")),
             info(make_node("tiny", cpu="100m", memory="64Mi"))]
    pods = [make_pod("p", cpu="200m"), make_pod("none", cpu=None, memory=None),
            make_pod("tolerant", tolerations=[{"operator": "Exists"}]),
            make_pod("k", tolerations=[{"key": "k", "operator": "Exists"}])]
    for plugin in (NodeUnschedulable(), NodeReady(), TaintToleration(), NodeResourcesFit()):
        for pod in pods:
            pi = PodInfo(pod)
            batch = plugin.filter_all(pi, nodes)  # type: ignore[attr-defined]
            single = [n for n in nodes if plugin.filter(pi, n) is SUCCESS]
            if batch is not None:
                assert [n.name for n in batch] == [n.name for n in single], (plugin.name, pod.metadata.name)


def test_batch_scores_equal_single_scores() -> None:
    nodes = [info(make_node("a")), info(make_node("b", cpu="1", memory="1Gi"), make_pod("x", cpu="900m", owner="rs")),
             info(make_node("c", cpu="0", memory="0")), info(make_node("d"), make_pod("y", owner="rs"))]
    for pod in (make_pod("p", owner="rs"), make_pod("q", cpu=None, memory=None), make_pod("r", cpu="2", memory="2Gi")):
        pi = PodInfo(pod)
        for plugin in (NodeResourcesLeastAllocated(), OwnerSpread()):
            assert plugin.score_nodes(pi, nodes) == [plugin.score(pi, n) for n in nodes]
