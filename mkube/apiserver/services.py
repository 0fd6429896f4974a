"""Service ClusterIP / NodePort allocation on the write path, and its repair.

What a Service holds (Kubernetes' rules):
- a ClusterIP unless it is headless (`clusterIP: None`) or `type: ExternalName`;
  a requested `clusterIP` is honoured when it is in the service CIDR and free;
- for `type: NodePort` / `LoadBalancer` (unless `allocateLoadBalancerNodePorts: false`)
  one NodePort per port; a requested `nodePort` is honoured when in range and free;
  the same number may serve a TCP and a UDP port of one Service.
A refusal is 422 Invalid naming the field (`spec.ports[0].nodePort: Invalid value:
30080: provided port is already allocated`).

`AllocatingStore` is a Store decorator (like the Service REST storage wrapping the
generic registry in Kubernetes): every write of `services` — by any handler, the
namespace cleanup, deletecollection — claims the values an object newly needs before
it is written, gives them back if the write fails, and frees the values it stopped
holding after the write (update that drops a port or changes type; delete).

`repair` (run at start and periodically) makes the records match the Services: it
re-claims values of existing Services whose record is missing and frees records whose
owner does not exist or no longer holds the value — but only records older than a
grace period, because claiming and writing the Service are separate transactions.
"""

from __future__ import annotations

import asyncio
import builtins
import copy
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from mkube.api.errors import ApiError, Cause, Invalid, is_conflict
from mkube.apiserver.allocator import (
    Allocator,
    AlreadyAllocated,
    IPRange,
    NotInRange,
    Owner,
    PortRange,
    RangeFull,
    owner_of_record,
    record_age_seconds,
)
from mkube.apiserver.storage.base import Change, ListResult, Store, write_async

log = logging.getLogger(__name__)

Obj = dict[str, Any]
SERVICES = "services"
NODE_PORT_TYPES = ("NodePort", "LoadBalancer")
#: Records younger than this are never freed by repair (claim and write are two transactions).
DEFAULT_GRACE_SECONDS = 30.0
_UPDATE_RETRIES = 8


# ---------------------------------------------------------------- what a Service holds

def _spec(obj: Obj | None) -> Obj:
    spec = (obj or {}).get("spec")
    return spec if isinstance(spec, dict) else {}


def _ports(spec: Obj) -> list[Obj]:
    ports = spec.get("ports")
    return [p for p in ports if isinstance(p, dict)] if isinstance(ports, list) else []


def wants_cluster_ip(spec: Obj) -> bool:
    return spec.get("type") != "ExternalName" and spec.get("clusterIP") != "None"


def wants_node_ports(spec: Obj) -> bool:
    """Whether ports without a nodePort get one allocated."""
    typ = spec.get("type")
    if typ == "NodePort":
        return True
    return typ == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is not False


def held_values(obj: Obj | None) -> tuple[str | None, set[int]]:
    """(clusterIP, nodePorts) a stored Service holds."""
    spec = _spec(obj)
    ip = spec.get("clusterIP")
    held_ip = ip if isinstance(ip, str) and ip and ip != "None" and spec.get("type") != "ExternalName" else None
    ports: set[int] = set()
    if spec.get("type") in NODE_PORT_TYPES:
        for p in _ports(spec):
            np = p.get("nodePort")
            if isinstance(np, int) and not isinstance(np, bool) and np > 0:
                ports.add(np)
    return held_ip, ports


def owner_of(obj: Obj) -> Owner:
    md = obj.get("metadata") or {}
    return Owner(str(md.get("namespace") or ""), str(md.get("name") or ""), str(md.get("uid") or ""))


def drop_type_dependents(body: Obj, old: Obj) -> None:
    """On update, drop the fields the new type does not allow that the client merely
    carried over from `old` (Kubernetes' dropTypeDependentsOnUpdate): nodePorts and
    externalTrafficPolicy when NodePort/LoadBalancer becomes ClusterIP/ExternalName,
    the clusterIP when the Service becomes ExternalName. Values the client changed are
    kept (validation then reports them). Mutates `body` (a raw request body)."""
    spec, ospec = body.get("spec"), _spec(old)
    if not isinstance(spec, dict):
        return
    new_type = spec.get("type") or "ClusterIP"
    old_type = ospec.get("type") or "ClusterIP"
    if new_type not in NODE_PORT_TYPES and old_type in NODE_PORT_TYPES:
        old_node_ports = {p.get("nodePort") for p in _ports(ospec) if isinstance(p.get("nodePort"), int)}
        for p in _ports(spec):
            np = p.get("nodePort")
            if isinstance(np, int) and np in old_node_ports:
                p.pop("nodePort", None)
        if spec.get("externalTrafficPolicy") == ospec.get("externalTrafficPolicy"):
            spec.pop("externalTrafficPolicy", None)
    if new_type != "LoadBalancer" and old_type == "LoadBalancer" and \
            spec.get("allocateLoadBalancerNodePorts") == ospec.get("allocateLoadBalancerNodePorts"):
        spec.pop("allocateLoadBalancerNodePorts", None)
    if new_type == "ExternalName" and old_type != "ExternalName":
        for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy"):
            if spec.get(key) == ospec.get(key):
                spec.pop(key, None)


# ---------------------------------------------------------------- claims

@dataclass
class Reservation:
    """Values claimed for one write; `rollback()` frees them if the write fails."""

    claimed: list[tuple[Allocator, str, str]] = field(default_factory=list)

    def add(self, allocator: Allocator, value: str, uid: str) -> None:
        self.claimed.append((allocator, value, uid))

    def rollback(self) -> None:
        for allocator, value, uid in reversed(self.claimed):
            try:
                allocator.release(value, uid)
            except Exception:  # repair frees it later; the original error matters more
                log.exception("could not release %s %s", allocator.range.kind, value)
        self.claimed.clear()


class ServiceAllocations:
    """The ClusterIP and NodePort allocators, with the Service rules on top."""

    def __init__(self, store: Store, cluster_ip_range: str, node_port_range: str | tuple[int, int]) -> None:
        self.ip_range = IPRange.parse(cluster_ip_range)
        self.port_range = PortRange.parse(node_port_range)
        self.ips = Allocator(store, self.ip_range)
        self.node_ports = Allocator(store, self.port_range)

    def claim(self, obj: Obj, old: Obj | None = None) -> Reservation:
        """Fill in and claim what `obj` needs and `old` (the stored version, on update)
        does not already hold. Mutates `obj`'s spec. Raises Invalid (nothing claimed)."""
        md = obj.setdefault("metadata", {})
        if not md.get("uid"):
            md["uid"] = str(uuid.uuid4())
        owner = owner_of(obj)
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return Reservation()
        held_ip, held_ports = held_values(old)
        res = Reservation()
        causes: list[Cause] = []
        try:
            if wants_cluster_ip(spec):
                self._claim_cluster_ip(spec, owner, held_ip, res, causes)
            if spec.get("type") in NODE_PORT_TYPES:
                self._claim_node_ports(spec, owner, held_ports, res, causes)
        except BaseException:
            res.rollback()
            raise
        if causes:
            res.rollback()
            raise Invalid("Service", owner.name, causes)
        return res

    def _claim_cluster_ip(self, spec: Obj, owner: Owner, held: str | None, res: Reservation,
                          causes: list[Cause]) -> None:
        requested = spec.get("clusterIP")
        if not requested and isinstance(spec.get("clusterIPs"), list) and spec["clusterIPs"]:
            requested = spec["clusterIPs"][0]
        if requested and requested == held:
            return
        if requested:
            try:
                value = self.ips.allocate(str(requested), owner)
            except NotInRange:
                causes.append(_invalid("spec.clusterIP", f'"{requested}"',
                                       f"provided IP is not in the valid range. The range of valid IPs is "
                                       f"{self.ip_range.describe()}"))
                return
            except AlreadyAllocated:
                causes.append(_invalid("spec.clusterIP", f'"{requested}"', "provided IP is already allocated"))
                return
        else:
            try:
                value = self.ips.allocate_next(owner)
            except RangeFull:
                causes.append(Cause("spec.clusterIP", "Internal error: failed to allocate a serviceIP: range is "
                                                      "full", "InternalError"))
                return
        res.add(self.ips, value, owner.uid)
        spec["clusterIP"] = value
        spec["clusterIPs"] = [value]

    def _claim_node_ports(self, spec: Obj, owner: Owner, held: set[int], res: Reservation,
                          causes: list[Cause]) -> None:
        ports = _ports(spec)
        mine = set(held)  # numbers this Service holds (a number may serve TCP and UDP)
        for i, p in enumerate(ports):
            np = p.get("nodePort")
            if not np or not isinstance(np, int) or np in mine:
                continue
            try:
                self.node_ports.allocate(str(np), owner)
            except NotInRange:
                causes.append(_invalid(f"spec.ports[{i}].nodePort", str(np),
                                       f"provided port is not in the valid range. The range of valid ports is "
                                       f"{self.port_range.describe()}"))
                continue
            except AlreadyAllocated:
                causes.append(_invalid(f"spec.ports[{i}].nodePort", str(np), "provided port is already allocated"))
                continue
            res.add(self.node_ports, str(np), owner.uid)
            mine.add(np)
        if not wants_node_ports(spec):
            return
        for i, p in enumerate(ports):
            if p.get("nodePort"):
                continue
            try:
                value = self.node_ports.allocate_next(owner)
            except RangeFull:
                causes.append(Cause(f"spec.ports[{i}].nodePort", "Internal error: failed to allocate a nodePort: "
                                                                 "range is full", "InternalError"))
                continue
            res.add(self.node_ports, value, owner.uid)
            p["nodePort"] = int(value)

    def release_unused(self, old: Obj, new: Obj | None) -> None:
        """Free what `old` held and `new` (None: deleted) does not. Errors are logged:
        repair frees anything left behind."""
        uid = owner_of(old).uid
        old_ip, old_ports = held_values(old)
        new_ip, new_ports = held_values(new)
        try:
            if old_ip and old_ip != new_ip:
                self.ips.release(old_ip, uid)
            for np in sorted(old_ports - new_ports):
                self.node_ports.release(str(np), uid)
        except Exception:
            log.exception("releasing the allocations of service %s/%s failed", owner_of(old).namespace,
                          owner_of(old).name)


def _invalid(path: str, shown: str, detail: str) -> Cause:
    return Cause(path, f"Invalid value: {shown}: {detail}", "FieldValueInvalid")


# ---------------------------------------------------------------- the Store decorator

class AllocatingStore:
    """A `Store` that allocates for `services` writes (see module docstring) and passes
    everything else through unchanged."""

    def __init__(self, inner: Store, allocations: ServiceAllocations) -> None:
        self.inner = inner
        self.allocations = allocations

    def create(self, resource: str, namespace: str, name: str, obj: Obj) -> Obj:
        if resource != SERVICES:
            return self.inner.create(resource, namespace, name, obj)
        obj = copy.deepcopy(obj)
        reservation = self.allocations.claim(obj)
        try:
            return self.inner.create(resource, namespace, name, obj)
        except BaseException:
            reservation.rollback()
            raise

    def update(self, resource: str, namespace: str, name: str, obj: Obj,
               expected_revision: int | None = None) -> Obj:
        if resource != SERVICES:
            return self.inner.update(resource, namespace, name, obj, expected_revision)
        return self._update_service(namespace, name, lambda _old: copy.deepcopy(obj), expected_revision)

    def guaranteed_update(self, resource: str, namespace: str, name: str,
                          mutate: Callable[[Obj], Obj | None]) -> Obj:
        if resource != SERVICES:
            return self.inner.guaranteed_update(resource, namespace, name, mutate)
        # claims need store writes, which must not run inside the store's transaction:
        # optimistic read-mutate-write instead (same outcome, retried on conflict)
        return self._update_service(namespace, name, lambda old: mutate(copy.deepcopy(old)), None)

    def _update_service(self, namespace: str, name: str, compute: Callable[[Obj], Obj | None],
                        expected_revision: int | None) -> Obj:
        last: ApiError | None = None
        for _ in range(_UPDATE_RETRIES):
            old = self.inner.get(SERVICES, namespace, name)
            new = compute(old)
            if new is None:
                return old
            old_rv = int((old.get("metadata") or {}).get("resourceVersion") or 0)
            # claims are computed against `old`, so the write must replace exactly `old`
            if expected_revision is not None and expected_revision != old_rv:
                return self.inner.update(SERVICES, namespace, name, new, expected_revision)  # -> Conflict
            md = new.setdefault("metadata", {})
            md.setdefault("uid", (old.get("metadata") or {}).get("uid"))
            reservation = self.allocations.claim(new, old)
            try:
                stored = self.inner.update(SERVICES, namespace, name, new, old_rv)
            except ApiError as err:
                reservation.rollback()
                if is_conflict(err) and expected_revision is None:
                    last = err
                    continue
                raise
            except BaseException:
                reservation.rollback()
                raise
            self.allocations.release_unused(old, stored)
            return stored
        assert last is not None
        raise last

    def delete(self, resource: str, namespace: str, name: str, expected_revision: int | None = None,
               expected_uid: str | None = None) -> Obj:
        removed = self.inner.delete(resource, namespace, name, expected_revision, expected_uid)
        if resource == SERVICES:
            self.allocations.release_unused(removed, None)
        return removed

    # ---------------------------------------------------------------- from an event loop
    # Defined here, not left to __getattr__: the inner store's would skip allocation.

    async def _write_async(self, method: str, resource: str, *args: Any) -> Obj:
        if resource == SERVICES:  # claims are blocking store writes of their own
            return await asyncio.to_thread(getattr(self, method), resource, *args)  # type: ignore[no-any-return]
        return await write_async(self.inner, method, resource, *args)

    def create_async(self, resource: str, namespace: str, name: str, obj: Obj) -> Awaitable[Obj]:
        return self._write_async("create", resource, namespace, name, obj)

    def update_async(self, resource: str, namespace: str, name: str, obj: Obj,
                     expected_revision: int | None = None) -> Awaitable[Obj]:
        return self._write_async("update", resource, namespace, name, obj, expected_revision)

    def guaranteed_update_async(self, resource: str, namespace: str, name: str,
                                mutate: Callable[[Obj], Obj | None]) -> Awaitable[Obj]:
        return self._write_async("guaranteed_update", resource, namespace, name, mutate)

    def delete_async(self, resource: str, namespace: str, name: str, expected_revision: int | None = None,
                     expected_uid: str | None = None) -> Awaitable[Obj]:
        return self._write_async("delete", resource, namespace, name, expected_revision, expected_uid)

    # ---------------------------------------------------------------- pass-through
    def get(self, resource: str, namespace: str, name: str) -> Obj:
        return self.inner.get(resource, namespace, name)

    def list(self, resource: str, namespace: str | None, *, limit: int | None = None,
             continue_token: str | None = None, predicate: Callable[[Obj], bool] | None = None) -> ListResult:
        return self.inner.list(resource, namespace, limit=limit, continue_token=continue_token, predicate=predicate)

    def current_revision(self) -> int:
        return self.inner.current_revision()

    def changes_since(self, revision: int, resource: str | None = None) -> builtins.list[Change]:
        return self.inner.changes_since(revision, resource)

    def compact(self, keep: int) -> int:
        return self.inner.compact(keep)

    def subscribe(self, callback: Callable[[Change], None]) -> Callable[[], None]:
        return self.inner.subscribe(callback)

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        # anything else the concrete store offers (e.g. SqlStore helpers used by tests)
        return getattr(self.inner, name)


# ---------------------------------------------------------------- repair

@dataclass
class RepairReport:
    reclaimed: list[str] = field(default_factory=list)  # "clusterip-10.96.0.10" ...
    released: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # values held by two Services

    def __bool__(self) -> bool:
        return bool(self.reclaimed or self.released or self.conflicts)


def repair(store: Store, allocations: ServiceAllocations,
           grace_seconds: float = DEFAULT_GRACE_SECONDS) -> RepairReport:
    """Make the allocation records match the Services (see module docstring).

    Records are listed *before* Services: a record older than the grace whose Service
    was being created is then guaranteed to see that Service in the later list."""
    report = RepairReport()
    by_kind = {
        "clusterip": (allocations.ips, allocations.ips.records()),
        "nodeport": (allocations.node_ports, allocations.node_ports.records()),
    }
    services = store.list(SERVICES, None).items
    holders: dict[tuple[str, str], list[Owner]] = {}
    for svc in services:
        owner = owner_of(svc)
        ip, ports = held_values(svc)
        values = [("clusterip", ip)] if ip else []
        values += [("nodeport", str(p)) for p in sorted(ports)]
        for kind, value in values:
            allocator, _records = by_kind[kind]
            norm = allocator.normalise(value)
            if norm is None:
                log.warning("service %s/%s holds %s %s outside the configured range %s", owner.namespace,
                            owner.name, kind, value, allocator.range.describe())
                continue
            holders.setdefault((kind, norm), []).append(owner)
    for (kind, value), owners in holders.items():
        allocator, records = by_kind[kind]
        if len(owners) > 1:
            names = ", ".join(f"{o.namespace}/{o.name}" for o in owners)
            log.error("%s %s is held by several services: %s", kind, value, names)
            report.conflicts.append(f"{kind}-{value}")
        rec = records.get(value)
        held_by = owner_of_record(rec).get("uid") if rec is not None else None
        if held_by in {o.uid for o in owners}:
            continue
        if rec is not None:
            if record_age_seconds(rec) < grace_seconds:
                continue  # maybe a create in flight: decide on a later pass
            if not allocator.release_record(rec):
                continue  # changed meanwhile: the next pass looks again
        try:
            allocator.allocate(value, owners[0])
            report.reclaimed.append(f"{kind}-{value}")
            log.warning("re-claimed %s %s for service %s/%s", kind, value, owners[0].namespace, owners[0].name)
        except AlreadyAllocated:
            pass  # claimed by someone else meanwhile: the next pass looks again
    for kind, (allocator, records) in by_kind.items():
        for value, rec in records.items():
            uid = owner_of_record(rec).get("uid")
            norm = allocator.normalise(value) or value
            if uid in {o.uid for o in holders.get((kind, norm), [])}:
                continue
            if record_age_seconds(rec) < grace_seconds:
                continue
            if allocator.release_record(rec):
                report.released.append(f"{kind}-{value}")
                gone = owner_of_record(rec)
                log.info("released leaked %s %s (owner %s/%s gone or no longer holding it)", kind, value,
                         gone.get("namespace"), gone.get("name"))
    return report
