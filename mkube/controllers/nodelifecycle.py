"""Node lifecycle controller: notice dead nodes, taint them, evict their pods.

Health: a node is healthy while its kubelet renews its Lease (`kube-node-lease/<node>`,
spec.renewTime) or posts its Ready condition (lastHeartbeatTime). As in Kubernetes, the
controller times heartbeats with its own clock — it notes *when it saw* a heartbeat
change, so clock skew between machines does not matter, and after a restart every node
gets a full grace period. Every `node_monitor_period` seconds, a node without a new
heartbeat for `node_monitor_grace_period` seconds gets Ready (and the pressure
conditions) set to Unknown — reason NodeStatusUnknown, "Kubelet stopped posting node
status." — an Event NodeNotReady, and its pods' Ready condition set to False (so that
Services stop sending them traffic).

Taints (level-triggered from the Ready condition): Ready=False -> `node.kubernetes.io/
not-ready` NoSchedule+NoExecute; Ready=Unknown -> `node.kubernetes.io/unreachable`
NoSchedule+NoExecute; Ready=True -> neither; `spec.unschedulable` -> `node.kubernetes.io/
unschedulable:NoSchedule`.

Eviction (Kubernetes' taint manager): a pod on a node with NoExecute taints is deleted
once it has been on the tainted node for as long as it tolerates (counted from the
taint's timeAdded, so a restart does not reset it): at once if some taint is not
tolerated, never if the tolerations are unbounded, else after the smallest
tolerationSeconds; pods without their own not-ready/unreachable toleration tolerate
them for `pod_eviction_timeout` seconds (300 by default). Event TaintManagerEviction.
Their controllers then create replacements, which the scheduler puts elsewhere.

Pods bound to a Node object that is deleted are removed at once (grace 0): no kubelet
will ever confirm their deletion (Kubernetes' pod GC does the same for orphaned pods).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from mkube.api.errors import is_not_found
from mkube.api.timeutil import format_time, now, parse_time
from mkube.api.types import Lease, Node, NodeCondition, Pod, Taint
from mkube.controllers import taints as tz
from mkube.controllers.base import Context, Controller

log = logging.getLogger(__name__)

NODE_LEASE_NAMESPACE = "kube-node-lease"
NODE_INDEX = "node-name"
_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
_NODE_PREFIX = "node:"
_POD_PREFIX = "pod:"
_GONE_PREFIX = "gone:"


def node_index(pod: Pod) -> list[str]:
    return [pod.spec.node_name] if pod.spec.node_name else []


def desired_taints(node: Node) -> list[tuple[str, str]]:
    """(key, effect) of the taints this controller owns that the node should carry."""
    ready = node.condition("Ready")
    status = ready.status if ready is not None else None
    out: list[tuple[str, str]] = []
    if status == "False":
        out += [(tz.NOT_READY, tz.NO_SCHEDULE), (tz.NOT_READY, tz.NO_EXECUTE)]
    elif status == "Unknown":
        out += [(tz.UNREACHABLE, tz.NO_SCHEDULE), (tz.UNREACHABLE, tz.NO_EXECUTE)]
    if node.spec.unschedulable:
        out.append((tz.UNSCHEDULABLE, tz.NO_SCHEDULE))
    return out


def _owned(taint: Taint) -> bool:
    return taint.key in (tz.NOT_READY, tz.UNREACHABLE, tz.UNSCHEDULABLE)


def reconcile_taints(node: Node, at: str) -> list[Taint] | None:
    """The node's new taint list, or None if it already carries exactly what it should."""
    want = desired_taints(node)
    current = list(node.spec.taints or [])
    have = {(t.key, t.effect) for t in current if _owned(t)}
    if have == set(want):
        return None
    kept = [t for t in current if not _owned(t) or (t.key, t.effect) in want]
    present = {(t.key, t.effect) for t in kept}
    added = [Taint(key=k, effect=e, time_added=at if e == tz.NO_EXECUTE else None)
             for k, e in want if (k, e) not in present]
    return kept + added


@dataclass
class _Health:
    probe: float  # monotonic time we last saw a heartbeat change
    heartbeat: str | None  # the Ready condition's lastHeartbeatTime we saw
    renew: str | None  # the Lease renewTime we saw


class NodeLifecycleController(Controller):
    """See the module docstring. Keys: `node:<name>` (taints) and `pod:<ns>/<name>` (eviction)."""

    name = "nodelifecycle"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx, ctx.options.nodelifecycle_workers)
        self.grace = ctx.options.node_monitor_grace_period
        self.default_toleration = ctx.options.pod_eviction_timeout
        self._health: dict[str, _Health] = {}
        self._retry_mark: set[str] = set()
        self._lock = threading.Lock()
        self.node_informer = self.watch(Node, self._add_node, self._update_node, self._delete_node)
        self.lease_informer = self.watch(Lease, namespace=NODE_LEASE_NAMESPACE)
        self.pod_informer = self.watch(Pod, self._add_pod, self._update_pod)
        self.pod_informer.add_index(NODE_INDEX, node_index)

    # ------------------------------------------------------------------ handlers
    def _add_node(self, node: Node) -> None:
        self.enqueue(_NODE_PREFIX + (node.metadata.name or ""))

    def _update_node(self, old: Node, new: Node) -> None:
        if old.metadata.resource_version == new.metadata.resource_version:
            return
        self.enqueue(_NODE_PREFIX + (new.metadata.name or ""))

    def _delete_node(self, node: Node) -> None:
        with self._lock:
            self._health.pop(node.metadata.name or "", None)
        self.enqueue(_GONE_PREFIX + (node.metadata.name or ""))

    def _add_pod(self, pod: Pod) -> None:
        if pod.spec.node_name and pod.metadata.deletion_timestamp is None:
            node = self.node_informer.get(pod.spec.node_name)
            if node is not None and any(t.effect == tz.NO_EXECUTE for t in node.spec.taints or []):
                self.enqueue(_POD_PREFIX + pod.key)

    def _update_pod(self, old: Pod, new: Pod) -> None:
        if old.spec.node_name != new.spec.node_name or old.spec.tolerations != new.spec.tolerations:
            self._add_pod(new)

    # ------------------------------------------------------------------ monitoring
    def monitor(self) -> None:
        """One pass of node health checking (run every node_monitor_period)."""
        for node in self.node_informer.list():
            try:
                self._monitor_node(node)
            except Exception as e:
                log.warning("nodelifecycle: checking node %s failed: %s", node.metadata.name, e)

    def _observe(self, node: Node) -> _Health:
        name = node.metadata.name or ""
        ready = node.condition("Ready")
        heartbeat = ready.last_heartbeat_time if ready is not None else None
        lease = self.lease_informer.get_by_name(name, NODE_LEASE_NAMESPACE)
        renew = lease.spec.renew_time if lease is not None else None
        clock = time.monotonic()
        with self._lock:
            health = self._health.get(name)
            if health is None:
                health = self._health[name] = _Health(clock, heartbeat, renew)
            else:
                if heartbeat != health.heartbeat:
                    health.heartbeat, health.probe = heartbeat, clock
                if renew is not None and renew != health.renew and _later(renew, health.renew):
                    health.renew, health.probe = renew, clock
            return _Health(health.probe, health.heartbeat, health.renew)

    def _monitor_node(self, node: Node) -> None:
        name = node.metadata.name or ""
        health = self._observe(node)
        ready = node.condition("Ready")
        transitioned = False
        if time.monotonic() - health.probe > self.grace:
            was_ready = ready is not None and ready.status == "True"
            if self._mark_unknown(node):
                log.info("nodelifecycle: node %s stopped posting status; marked Ready=Unknown", name)
                if was_ready:
                    self.event(node, "Normal", "NodeNotReady", f"Node {name} status is now: NodeNotReady")
                    transitioned = True
        with self._lock:
            retry = name in self._retry_mark
        if not transitioned and not retry:
            return
        if not transitioned and ready is not None and ready.status == "True":
            with self._lock:  # it recovered before we got its pods
                self._retry_mark.discard(name)
            return
        done = self._mark_pods_not_ready(name)
        with self._lock:
            if done:
                self._retry_mark.discard(name)
            else:
                self._retry_mark.add(name)

    def _mark_unknown(self, node: Node) -> bool:
        """Set the kubelet's conditions to Unknown. True if the Ready condition changed."""
        new = node.copy_deep()
        stamp = format_time(now())
        conditions = list(new.status.conditions or [])
        for type_ in _CONDITIONS:
            cond = next((c for c in conditions if c.type == type_), None)
            if cond is None:
                conditions.append(NodeCondition(type=type_, status="Unknown", reason="NodeStatusNeverUpdated",
                                                message="Kubelet never posted node status.",
                                                last_heartbeat_time=node.metadata.creation_timestamp,
                                                last_transition_time=stamp))
            elif cond.status != "Unknown":
                cond.status = "Unknown"
                cond.reason = "NodeStatusUnknown"
                cond.message = "Kubelet stopped posting node status."
                cond.last_transition_time = stamp
        new.status.conditions = conditions
        before = node.condition("Ready")
        after = new.condition("Ready")
        if before is not None and after is not None and before.to_dict() == after.to_dict():
            return False
        self.client.update_status(new)
        return True

    def _mark_pods_not_ready(self, node_name: str) -> bool:
        """Set Ready=False on every pod of the node (MarkPodsNotReady). True if all succeeded."""
        ok = True
        for pod in self.pod_informer.by_index(NODE_INDEX, node_name):
            if pod.metadata.deletion_timestamp is not None or pod.status.phase in ("Succeeded", "Failed"):
                continue
            conds = pod.status.conditions or []
            ready = next((c for c in conds if c.type == "Ready"), None)
            if ready is None or ready.status == "False":
                continue
            new = pod.copy_deep()
            for c in new.status.conditions or []:
                if c.type == "Ready":
                    c.status = "False"
                    c.last_transition_time = format_time(now())
            try:
                self.client.update_status(new)
                self.event(pod, "Warning", "NodeNotReady", "Node is not ready")
            except Exception as e:
                if not is_not_found(e):
                    log.info("nodelifecycle: marking pod %s not ready failed: %s", pod.key, e)
                    ok = False
        return ok

    # ------------------------------------------------------------------ sync
    def sync(self, key: str) -> None:
        if key.startswith(_NODE_PREFIX):
            self._sync_node(key[len(_NODE_PREFIX):])
        elif key.startswith(_POD_PREFIX):
            self._sync_pod(key[len(_POD_PREFIX):])
        elif key.startswith(_GONE_PREFIX):
            self._sync_deleted_node(key[len(_GONE_PREFIX):])

    def _sync_deleted_node(self, name: str) -> None:
        """Pods bound to a Node that no longer exists will never be confirmed deleted by a
        kubelet: remove them at once (Kubernetes' pod GC of orphaned pods)."""
        if self.node_informer.get(name) is not None or self.client.exists(Node, name):
            return
        for pod in self.pod_informer.by_index(NODE_INDEX, name):
            try:
                self.client.delete(Pod, pod.metadata.name or "", pod.metadata.namespace, grace_period_seconds=0,
                                   preconditions={"uid": pod.metadata.uid or ""})
                log.info("nodelifecycle: deleted pod %s of deleted node %s", pod.key, name)
            except Exception as e:
                if not is_not_found(e):
                    raise

    def _sync_node(self, name: str) -> None:
        node = self.node_informer.get(name)
        if node is None:
            return
        taints = reconcile_taints(node, format_time(now()))
        if taints is not None:
            new = node.copy_deep()
            new.spec.taints = taints
            node = self.client.update(new)
            log.info("nodelifecycle: node %s taints now %s", name,
                     [f"{t.key}:{t.effect}" for t in taints] or "none")
        if any(t.effect == tz.NO_EXECUTE for t in node.spec.taints or []):
            for pod in self.pod_informer.by_index(NODE_INDEX, name):
                if pod.metadata.deletion_timestamp is None:
                    self.enqueue(_POD_PREFIX + pod.key)

    def _sync_pod(self, key: str) -> None:
        pod = self.pod_informer.get(key)
        if pod is None or pod.metadata.deletion_timestamp is not None or not pod.spec.node_name:
            return
        if pod.status.phase in ("Succeeded", "Failed"):
            return
        node = self.node_informer.get(pod.spec.node_name)
        if node is None:
            return
        no_execute = [t for t in node.spec.taints or [] if t.effect == tz.NO_EXECUTE]
        delay = tz.eviction_delay(pod.spec.tolerations, no_execute, self.default_toleration)
        if delay is None:
            return
        added = [t for t in (parse_time(x.time_added) for x in no_execute) if t is not None]
        start = min(added).timestamp() if added else now().timestamp()
        wait = start + delay - now().timestamp()
        if wait > 0:
            self.enqueue_after(_POD_PREFIX + key, wait)
            return
        self.event(pod, "Normal", "TaintManagerEviction", f"Marking for deletion Pod {key}")
        try:
            self.client.delete(Pod, pod.metadata.name or "", pod.metadata.namespace,
                               preconditions={"uid": pod.metadata.uid or ""})
        except Exception as e:
            if not is_not_found(e):
                raise
        log.info("nodelifecycle: evicted pod %s from node %s", key, node.metadata.name)


def _later(a: str, b: str | None) -> bool:
    if b is None:
        return True
    ta, tb = parse_time(a), parse_time(b)
    if ta is None or tb is None:
        return a != b
    return ta > tb

