"""ClusterIP / NodePort allocation: ranges, requested values, exhaustion, concurrency,
the Service rules (services.ServiceAllocations), the allocating Store decorator and
repair. Runs on an in-memory Store and on the real SqlStore (a temp SQLite file)."""

from __future__ import annotations

import builtins
import copy
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from mkube.api.errors import AlreadyExists, ApiError, Conflict, Invalid, NotFound
from mkube.apiserver.allocator import (
    ALLOCATIONS,
    Allocator,
    AlreadyAllocated,
    IPRange,
    NotInRange,
    Owner,
    PortRange,
    RangeFull,
)
from mkube.apiserver.services import (
    AllocatingStore,
    ServiceAllocations,
    drop_type_dependents,
    repair,
)
from mkube.apiserver.storage.base import Change, ListResult, Store
from mkube.apiserver.storage.sql import SqlStore

Obj = dict[str, Any]


class MemStore:
    """A thread-safe in-memory Store with the contract's error behaviour."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objs: dict[tuple[str, str, str], Obj] = {}
        self._rev = 0

    def _stamp(self, obj: Obj) -> Obj:
        self._rev += 1
        new = copy.deepcopy(obj)
        new.setdefault("metadata", {})["resourceVersion"] = str(self._rev)
        return new

    def create(self, resource: str, namespace: str, name: str, obj: Obj) -> Obj:
        with self._lock:
            if (resource, namespace, name) in self._objs:
                raise AlreadyExists(resource, name)
            new = self._stamp(obj)
            self._objs[(resource, namespace, name)] = new
            return copy.deepcopy(new)

    def get(self, resource: str, namespace: str, name: str) -> Obj:
        with self._lock:
            obj = self._objs.get((resource, namespace, name))
            if obj is None:
                raise NotFound(resource, name)
            return copy.deepcopy(obj)

    def list(self, resource: str, namespace: str | None, *, limit: int | None = None,
             continue_token: str | None = None, predicate: Callable[[Obj], bool] | None = None) -> ListResult:
        with self._lock:
            items = [copy.deepcopy(o) for (r, ns, _), o in sorted(self._objs.items())
                     if r == resource and (namespace is None or ns == namespace)]
            rev = self._rev
        return ListResult([o for o in items if predicate is None or predicate(o)], rev, None)

    def update(self, resource: str, namespace: str, name: str, obj: Obj,
               expected_revision: int | None = None) -> Obj:
        with self._lock:
            cur = self._objs.get((resource, namespace, name))
            if cur is None:
                raise NotFound(resource, name)
            if expected_revision is not None and int(cur["metadata"]["resourceVersion"]) != expected_revision:
                raise Conflict(resource, name, "modified")
            new = self._stamp(obj)
            self._objs[(resource, namespace, name)] = new
            return copy.deepcopy(new)

    def guaranteed_update(self, resource: str, namespace: str, name: str,
                          mutate: Callable[[Obj], Obj | None]) -> Obj:
        with self._lock:
            cur = self._objs.get((resource, namespace, name))
            if cur is None:
                raise NotFound(resource, name)
            new = mutate(copy.deepcopy(cur))
            if new is None:
                return copy.deepcopy(cur)
            stored = self._stamp(new)
            self._objs[(resource, namespace, name)] = stored
            return copy.deepcopy(stored)

    def delete(self, resource: str, namespace: str, name: str, expected_revision: int | None = None,
               expected_uid: str | None = None) -> Obj:
        with self._lock:
            cur = self._objs.get((resource, namespace, name))
            if cur is None:
                raise NotFound(resource, name)
            if expected_revision is not None and int(cur["metadata"]["resourceVersion"]) != expected_revision:
                raise Conflict(resource, name, "precondition")
            del self._objs[(resource, namespace, name)]
            return self._stamp(cur)

    def current_revision(self) -> int:
        return self._rev

    def changes_since(self, revision: int, resource: str | None = None) -> builtins.list[Change]:
        return []

    def compact(self, keep: int) -> int:
        return 0

    def subscribe(self, callback: Callable[[Change], None]) -> Callable[[], None]:
        return lambda: None

    def close(self) -> None:
        pass


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "memory":
        yield MemStore()
        return
    sql = SqlStore(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        yield sql
    finally:
        sql.close()


def owner(name: str = "svc") -> Owner:
    return Owner("default", name, str(uuid.uuid4()))


def service(name: str, **spec: Any) -> Obj:
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("ports", [{"port": 80, "protocol": "TCP"}])
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default", "uid": str(uuid.uuid4())}, "spec": spec}


def records(store: Store) -> set[str]:
    return {o["metadata"]["name"] for o in store.list(ALLOCATIONS, "").items}


# ---------------------------------------------------------------- ranges

def test_port_range_parse_and_bounds() -> None:
    r = PortRange.parse("30000-32767")
    assert (r.size, r.value_at(0), r.value_at(r.size - 1)) == (2768, "30000", "32767")
    assert r.index_of("30080") == 80 and r.index_of("29999") is None and r.index_of("32768") is None
    assert r.index_of("nope") is None
    assert PortRange.parse((30000, 30001)).size == 2
    for bad in ("30000", "5-1", "0-10", "1-70000"):
        with pytest.raises(ValueError):
            PortRange.parse(bad)


def test_ip_range_excludes_network_broadcast_and_reserves_first() -> None:
    r = IPRange.parse("10.96.0.0/12")
    assert r.size == 2**20 - 2
    assert r.first_ip() == "10.96.0.1" and not r.dynamic(0) and r.dynamic(1)
    assert r.value_at(r.size - 1) == "10.111.255.254"
    assert r.index_of("10.96.0.0") is None and r.index_of("10.111.255.255") is None
    assert r.index_of("10.0.0.1") is None and r.index_of("::1") is None and r.index_of("x") is None
    v6 = IPRange.parse("fd00:10:96::/120")
    assert v6.size == 255 and v6.first_ip() == "fd00:10:96::1"


# ---------------------------------------------------------------- allocator

def test_requested_value_is_honoured_once(store: Store) -> None:
    alloc = Allocator(store, PortRange(30000, 30100))
    a, b = owner("a"), owner("b")
    assert alloc.allocate("30080", a) == "30080"
    assert alloc.allocate("30080", a) == "30080"  # idempotent for the same owner
    with pytest.raises(AlreadyAllocated) as exc:
        alloc.allocate("30080", b)
    assert exc.value.owner["name"] == "a"
    with pytest.raises(NotInRange):
        alloc.allocate("20000", b)
    assert alloc.owner_of("30080")["uid"] == a.uid  # type: ignore[index]


def test_dynamic_values_are_unique_until_exhausted(store: Store) -> None:
    alloc = Allocator(store, PortRange(30000, 30019))
    got = [alloc.allocate_next(owner()) for _ in range(20)]
    assert sorted(got) == [str(p) for p in range(30000, 30020)]
    with pytest.raises(RangeFull):
        alloc.allocate_next(owner())


def test_ip_dynamic_never_hands_out_the_reserved_first_address(store: Store) -> None:
    alloc = Allocator(store, IPRange.parse("10.0.0.0/29"))  # .1 .. .6; .1 reserved
    got = {alloc.allocate_next(owner()) for _ in range(5)}
    assert got == {f"10.0.0.{i}" for i in range(2, 7)}
    with pytest.raises(RangeFull):
        alloc.allocate_next(owner())
    assert alloc.allocate("10.0.0.1", owner("kubernetes")) == "10.0.0.1"  # but it can be requested


def test_release_only_by_the_owner(store: Store) -> None:
    alloc = Allocator(store, PortRange(30000, 30010))
    a = owner("a")
    alloc.allocate("30001", a)
    assert not alloc.release("30001", "someone-else")
    assert "nodeport-30001" in records(store)
    assert alloc.release("30001", a.uid)
    assert not alloc.release("30001", a.uid)
    assert alloc.allocate("30001", owner("b")) == "30001"


def test_concurrent_allocation_from_threads_never_duplicates(store: Store) -> None:
    alloc = Allocator(store, PortRange(30000, 30149))  # 150 values, 16 threads racing for them
    results: list[str] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        while True:
            try:
                value = alloc.allocate_next(owner())
            except RangeFull:
                return
            except BaseException as exc:  # anything else is a bug
                failures.append(exc)
                return
            with lock:
                results.append(value)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures
    assert len(results) == 150 and len(set(results)) == 150
    assert records(store) == {f"nodeport-{p}" for p in range(30000, 30150)}


def test_concurrent_requests_for_one_value_have_one_winner(store: Store) -> None:
    alloc = Allocator(store, PortRange(30000, 30010))

    def claim(_: int) -> bool:
        try:
            alloc.allocate("30005", owner())
            return True
        except AlreadyAllocated:
            return False

    with ThreadPoolExecutor(12) as pool:
        wins = list(pool.map(claim, range(24)))
    assert wins.count(True) == 1


# ---------------------------------------------------------------- service rules

@pytest.fixture
def allocs(store: Store) -> ServiceAllocations:
    return ServiceAllocations(store, "10.96.0.0/24", (30000, 30009))


def test_service_gets_cluster_ip_and_node_ports(allocs: ServiceAllocations) -> None:
    svc = service("web", type="NodePort", ports=[{"name": "a", "port": 80, "protocol": "TCP"},
                                                {"name": "b", "port": 81, "protocol": "TCP"}])
    allocs.claim(svc)
    spec = svc["spec"]
    assert allocs.ip_range.index_of(spec["clusterIP"]) not in (None, 0)
    assert spec["clusterIPs"] == [spec["clusterIP"]]
    ports = [p["nodePort"] for p in spec["ports"]]
    assert len(set(ports)) == 2 and all(30000 <= p <= 30009 for p in ports)


def test_cluster_ip_type_headless_and_external_name_get_no_node_ports(allocs: ServiceAllocations,
                                                                    store: Store) -> None:
    plain = service("plain")
    allocs.claim(plain)
    assert "nodePort" not in plain["spec"]["ports"][0] and plain["spec"]["clusterIP"]
    headless = service("headless", clusterIP="None")
    allocs.claim(headless)
    assert headless["spec"]["clusterIP"] == "None"
    ext = service("ext", type="ExternalName", externalName="example.com")
    allocs.claim(ext)
    assert "clusterIP" not in ext["spec"]
    assert records(store) == {f"clusterip-{plain['spec']['clusterIP']}"}


def test_load_balancer_without_node_port_allocation(allocs: ServiceAllocations) -> None:
    svc = service("lb", type="LoadBalancer", allocateLoadBalancerNodePorts=False)
    allocs.claim(svc)
    assert "nodePort" not in svc["spec"]["ports"][0]
    lb = service("lb2", type="LoadBalancer")
    allocs.claim(lb)
    assert lb["spec"]["ports"][0]["nodePort"]


def test_same_node_port_for_tcp_and_udp_of_one_service(allocs: ServiceAllocations) -> None:
    svc = service("dns", type="NodePort", ports=[
        {"name": "tcp", "port": 53, "protocol": "TCP", "nodePort": 30003},
        {"name": "udp", "port": 53, "protocol": "UDP", "nodePort": 30003}])
    allocs.claim(svc)
    assert [p["nodePort"] for p in svc["spec"]["ports"]] == [30003, 30003]


def test_refusals_name_the_field_and_claim_nothing(allocs: ServiceAllocations, store: Store) -> None:
    allocs.claim(service("first", type="NodePort", clusterIP="10.96.0.10",
                         ports=[{"port": 80, "protocol": "TCP", "nodePort": 30001}]))
    before = records(store)
    bad = service("second", type="NodePort", ports=[
        {"name": "free", "port": 80, "protocol": "TCP", "nodePort": 30002},
        {"name": "taken", "port": 81, "protocol": "TCP", "nodePort": 30001},
        {"name": "out", "port": 82, "protocol": "TCP", "nodePort": 20000}])
    with pytest.raises(Invalid) as exc:
        allocs.claim(bad)
    messages = [c.summary() for c in exc.value.causes]
    assert messages == [
        "spec.ports[1].nodePort: Invalid value: 30001: provided port is already allocated",
        "spec.ports[2].nodePort: Invalid value: 20000: provided port is not in the valid range. "
        "The range of valid ports is 30000-30009"]
    assert exc.value.code == 422
    assert records(store) == before  # 30002 was given back
    for ip, detail in (("10.96.0.10", "provided IP is already allocated"),
                       ("10.0.0.1", "provided IP is not in the valid range. The range of valid IPs is "
                                    "10.96.0.0/24")):
        with pytest.raises(Invalid) as exc:
            allocs.claim(service("x", clusterIP=ip))
        assert [c.summary() for c in exc.value.causes] == [f'spec.clusterIP: Invalid value: "{ip}": '
                                                                      f'{detail}']


def test_node_port_exhaustion_is_422(allocs: ServiceAllocations) -> None:
    for i in range(10):
        allocs.claim(service(f"s{i}", type="NodePort"))
    with pytest.raises(Invalid) as exc:
        allocs.claim(service("one-too-many", type="NodePort"))
    assert "range is full" in exc.value.message


def test_drop_type_dependents_on_update() -> None:
    old = service("web", type="NodePort", externalTrafficPolicy="Cluster",
                  ports=[{"port": 80, "protocol": "TCP", "nodePort": 30001}])
    body = copy.deepcopy(old)
    body["spec"]["type"] = "ClusterIP"
    drop_type_dependents(body, old)
    assert "nodePort" not in body["spec"]["ports"][0] and "externalTrafficPolicy" not in body["spec"]
    changed = copy.deepcopy(old)
    changed["spec"].update(type="ClusterIP")
    changed["spec"]["ports"][0]["nodePort"] = 30002  # the client asked for this: validation refuses it
    drop_type_dependents(changed, old)
    assert changed["spec"]["ports"][0]["nodePort"] == 30002
    old_ip = service("web", clusterIP="10.96.0.5", clusterIPs=["10.96.0.5"])
    ext = copy.deepcopy(old_ip)
    ext["spec"].update(type="ExternalName", externalName="example.com")
    drop_type_dependents(ext, old_ip)
    assert "clusterIP" not in ext["spec"] and "clusterIPs" not in ext["spec"]


# ---------------------------------------------------------------- the Store decorator

@pytest.fixture
def astore(store: Store, allocs: ServiceAllocations) -> AllocatingStore:
    return AllocatingStore(store, allocs)


def test_store_create_update_delete_claim_and_free(astore: AllocatingStore, store: Store) -> None:
    created = astore.create("services", "default", "web", service("web", type="NodePort"))
    ip, np = created["spec"]["clusterIP"], created["spec"]["ports"][0]["nodePort"]
    assert records(store) == {f"clusterip-{ip}", f"nodeport-{np}"}
    # type ClusterIP: the nodePort is freed, the ClusterIP kept
    new = copy.deepcopy(created)
    new["spec"]["type"] = "ClusterIP"
    del new["spec"]["ports"][0]["nodePort"]
    updated = astore.update("services", "default", "web", new, int(created["metadata"]["resourceVersion"]))
    assert updated["spec"]["clusterIP"] == ip
    assert records(store) == {f"clusterip-{ip}"}
    # back to NodePort with a second port: two new nodePorts
    back = copy.deepcopy(updated)
    back["spec"]["type"] = "NodePort"
    back["spec"]["ports"] = [{"name": "a", "port": 80, "protocol": "TCP"}, {"name": "b", "port": 81, "protocol": "TCP"}]
    again = astore.update("services", "default", "web", back)
    nps = {p["nodePort"] for p in again["spec"]["ports"]}
    assert len(nps) == 2 and records(store) == {f"clusterip-{ip}"} | {f"nodeport-{p}" for p in nps}
    # drop one port: its nodePort is freed
    one = copy.deepcopy(again)
    one["spec"]["ports"] = one["spec"]["ports"][:1]
    kept = one["spec"]["ports"][0]["nodePort"]
    astore.update("services", "default", "web", one)
    assert records(store) == {f"clusterip-{ip}", f"nodeport-{kept}"}
    astore.delete("services", "default", "web")
    assert records(store) == set()


def test_store_failed_create_gives_values_back(astore: AllocatingStore, store: Store) -> None:
    astore.create("services", "default", "web", service("web", type="NodePort"))
    before = records(store)
    with pytest.raises(ApiError):
        astore.create("services", "default", "web", service("web", type="NodePort"))  # AlreadyExists
    assert records(store) == before


def test_store_stale_update_is_conflict_and_gives_values_back(astore: AllocatingStore, store: Store) -> None:
    created = astore.create("services", "default", "web", service("web"))
    astore.update("services", "default", "web", copy.deepcopy(created))  # bumps the resourceVersion
    before = records(store)
    stale = copy.deepcopy(created)
    stale["spec"]["type"] = "NodePort"
    with pytest.raises(Conflict):
        astore.update("services", "default", "web", stale, int(created["metadata"]["resourceVersion"]))
    assert records(store) == before


def test_store_passes_other_resources_through(astore: AllocatingStore, store: Store) -> None:
    astore.create("configmaps", "default", "c", {"metadata": {"name": "c"}})
    astore.update("configmaps", "default", "c", {"metadata": {"name": "c"}, "data": {"a": "b"}})
    astore.delete("configmaps", "default", "c")
    assert records(store) == set()


# ---------------------------------------------------------------- repair

def _age(store: Store, name: str, timestamp: str = "2000-01-01T00:00:00Z") -> None:
    rec = store.get(ALLOCATIONS, "", name)
    rec["metadata"]["creationTimestamp"] = timestamp
    store.update(ALLOCATIONS, "", name, rec)


def test_repair_frees_leaks_after_grace_and_reclaims_missing(astore: AllocatingStore, store: Store,
                                                            allocs: ServiceAllocations) -> None:
    live = astore.create("services", "default", "live", service("live", type="NodePort", ports=[
        {"port": 80, "protocol": "TCP", "nodePort": 30001}]))
    ip, np = live["spec"]["clusterIP"], live["spec"]["ports"][0]["nodePort"]
    # a leak: claimed for a Service whose write never happened
    allocs.node_ports.allocate("30009", owner("crashed"))
    # a lost record: a Service holds a value without a record
    store.delete(ALLOCATIONS, "", f"clusterip-{ip}")
    report = repair(store, allocs, grace_seconds=30)
    assert report.reclaimed == [f"clusterip-{ip}"] and report.released == []  # the leak is still young
    assert records(store) == {f"clusterip-{ip}", f"nodeport-{np}", "nodeport-30009"}
    _age(store, "nodeport-30009")
    report = repair(store, allocs, grace_seconds=30)
    assert report.released == ["nodeport-30009"] and not report.reclaimed
    assert records(store) == {f"clusterip-{ip}", f"nodeport-{np}"}
    assert not repair(store, allocs, grace_seconds=30)  # converged: nothing to do


def test_repair_frees_values_an_owner_no_longer_holds(astore: AllocatingStore, store: Store,
                                                     allocs: ServiceAllocations) -> None:
    svc = astore.create("services", "default", "web", service("web", type="NodePort"))
    np = svc["spec"]["ports"][0]["nodePort"]
    # the owner's update to ClusterIP was written by the inner store, bypassing the free step
    new = copy.deepcopy(svc)
    new["spec"]["type"] = "ClusterIP"
    del new["spec"]["ports"][0]["nodePort"]
    store.update("services", "default", "web", new)
    _age(store, f"nodeport-{np}")
    assert repair(store, allocs, grace_seconds=30).released == [f"nodeport-{np}"]


def test_repair_moves_a_stale_record_to_the_service_holding_the_value(astore: AllocatingStore, store: Store,
                                                                    allocs: ServiceAllocations) -> None:
    svc = astore.create("services", "default", "web", service("web", type="NodePort"))
    np = svc["spec"]["ports"][0]["nodePort"]
    rec = store.get(ALLOCATIONS, "", f"nodeport-{np}")
    rec["spec"]["owner"] = {"namespace": "default", "name": "gone", "uid": "gone-uid"}
    rec["metadata"]["creationTimestamp"] = "2000-01-01T00:00:00Z"
    store.update(ALLOCATIONS, "", f"nodeport-{np}", rec)
    report = repair(store, allocs, grace_seconds=30)
    assert report.reclaimed == [f"nodeport-{np}"]
    assert allocs.node_ports.owner_of(str(np))["uid"] == svc["metadata"]["uid"]  # type: ignore[index]


def test_one_service_never_gets_the_same_dynamic_port_twice(store: Store) -> None:
    allocs = ServiceAllocations(store, "10.96.0.0/24", (30000, 30002))
    svc = service("three", type="NodePort", ports=[{"name": n, "port": p, "protocol": "TCP"}
                                                    for n, p in (("a", 80), ("b", 81), ("c", 82))])
    allocs.claim(svc)
    assert sorted(p["nodePort"] for p in svc["spec"]["ports"]) == [30000, 30001, 30002]
