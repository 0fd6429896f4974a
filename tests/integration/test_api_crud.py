"""The API server over real HTTP: CRUD for every kind, concurrency control, deletion
semantics, namespaces, selectors and paging, watches, Tables, discovery, durability.

Most tests share one server (`client`), each in its own fresh `namespace`; the ones that
need flags or restart/kill the server start their own."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mkube.api.kinds import RESOURCES
from tests.integration.kube_samples import (
    collection_url,
    dump,
    object_url,
    pod,
    read_events,
    rt_of,
    sample,
)

Obj = dict[str, Any]
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
MERGE = {"Content-Type": "application/merge-patch+json"}


@pytest.fixture
def client(shared_api_server: Any) -> Iterator[httpx.Client]:
    """HTTP to the shared API server; the test works in its own `namespace`."""
    with httpx.Client(base_url=shared_api_server.url, timeout=30) as c:
        yield c


def create(c: httpx.Client, kind: str, obj: Obj, namespace: str = "default") -> Obj:
    r = c.post(collection_url("", kind, namespace), json=obj)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def rv(obj: Obj) -> int:
    return int(obj["metadata"]["resourceVersion"])


# ---------------------------------------------------------------- CRUD per kind

@pytest.mark.parametrize("kind", [rt.kind for rt in RESOURCES])
def test_crud_every_kind(client: httpx.Client, namespace: str, kind: str) -> None:
    rt = rt_of(kind)
    name = f"crud-{kind.lower()}" if rt.namespaced else f"{namespace}-crud"  # cluster-wide: unique
    obj = sample(kind, name)
    if kind == "Event":
        obj["involvedObject"]["namespace"] = namespace  # an event lives in its object's namespace
    created = create(client, kind, obj, namespace)
    md = created["metadata"]
    assert created["kind"] == kind and created["apiVersion"] == rt.api_version
    assert md["name"] == name and md["uid"] and md["generation"] == 1
    assert md["creationTimestamp"].endswith("Z") and rv(created) > 0
    assert (md.get("namespace") == namespace) == rt.namespaced

    url = object_url("", kind, name, namespace)
    got = client.get(url)
    assert got.status_code == 200 and got.json() == created

    listed = client.get(collection_url("", kind, namespace))
    assert listed.status_code == 200
    body = listed.json()
    assert body["kind"] == f"{kind}List" and int(body["metadata"]["resourceVersion"]) >= rv(created)
    assert name in [i["metadata"]["name"] for i in body["items"]]

    # update (PUT) with the current resourceVersion
    new = dict(created)
    new["metadata"] = {**md, "labels": {**(md.get("labels") or {}), "updated": "yes"}}
    put = client.put(url, json=new)
    assert put.status_code == 200, put.text
    assert put.json()["metadata"]["labels"]["updated"] == "yes" and rv(put.json()) > rv(created)
    assert put.json()["metadata"]["uid"] == md["uid"]

    # merge patch
    patched = client.patch(url, json={"metadata": {"annotations": {"note": "patched"}}}, headers=MERGE)
    assert patched.status_code == 200, patched.text
    assert patched.json()["metadata"]["annotations"]["note"] == "patched"
    assert patched.json()["metadata"]["labels"]["updated"] == "yes"

    deleted = client.delete(url)
    assert deleted.status_code == 200, deleted.text
    if kind == "Namespace":  # namespaces terminate, then disappear
        assert deleted.json()["status"]["phase"] == "Terminating"
        wait_gone(client, url)
    gone = client.get(url)
    assert gone.status_code == 404
    status = gone.json()
    assert status["kind"] == "Status" and status["reason"] == "NotFound" and status["code"] == 404
    assert name in status["message"]


def wait_gone(c: httpx.Client, url: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if c.get(url).status_code == 404:
            return
        time.sleep(0.05)
    raise AssertionError(f"{url} still exists: {c.get(url).text}")


def test_create_twice_is_already_exists(client: httpx.Client, namespace: str) -> None:
    create(client, "ConfigMap", sample("ConfigMap", "twice"), namespace)
    r = client.post(collection_url("", "ConfigMap", namespace), json=sample("ConfigMap", "twice"))
    assert r.status_code == 409 and r.json()["reason"] == "AlreadyExists"


def test_generate_name(client: httpx.Client, namespace: str) -> None:
    obj = sample("ConfigMap")
    del obj["metadata"]["name"]
    obj["metadata"]["generateName"] = "gen-"
    names = {create(client, "ConfigMap", obj, namespace)["metadata"]["name"] for _ in range(5)}
    assert len(names) == 5 and all(n.startswith("gen-") and len(n) == 9 for n in names)


def test_dry_run_create_stores_nothing(client: httpx.Client, namespace: str) -> None:
    r = client.post(collection_url("", "ConfigMap", namespace) + "?dryRun=All", json=sample("ConfigMap", "dry"))
    assert r.status_code == 201 and r.json()["metadata"]["name"] == "dry"
    assert client.get(object_url("", "ConfigMap", "dry", namespace)).status_code == 404


# ---------------------------------------------------------------- concurrency control

def test_stale_resource_version_is_conflict(client: httpx.Client, namespace: str) -> None:
    first = create(client, "ConfigMap", sample("ConfigMap", "occ"), namespace)
    url = object_url("", "ConfigMap", "occ", namespace)
    a = {**first, "data": {"key": "a"}}
    assert client.put(url, json=a).status_code == 200
    b = {**first, "data": {"key": "b"}}  # still carries the first resourceVersion
    r = client.put(url, json=b)
    assert r.status_code == 409
    assert r.json()["reason"] == "Conflict" and "the object has been modified" in r.json()["message"]
    assert client.get(url).json()["data"] == {"key": "a"}
    # no resourceVersion: unconditional update
    c = {**first, "metadata": {k: v for k, v in first["metadata"].items() if k != "resourceVersion"},
         "data": {"key": "c"}}
    assert client.put(url, json=c).status_code == 200
    assert client.get(url).json()["data"] == {"key": "c"}


def test_generation_bumps_on_spec_changes_only(client: httpx.Client, namespace: str) -> None:
    d = create(client, "Deployment", sample("Deployment", "gen"), namespace)
    url = object_url("", "Deployment", "gen", namespace)
    assert d["metadata"]["generation"] == 1
    r = client.patch(url, json={"metadata": {"labels": {"x": "y"}}}, headers=MERGE)
    assert r.json()["metadata"]["generation"] == 1  # metadata only
    r = client.patch(url, json={"spec": {"replicas": 5}}, headers=MERGE)
    assert r.json()["metadata"]["generation"] == 2
    r = client.patch(url + "/status", json={"status": {"replicas": 5, "observedGeneration": 2}}, headers=MERGE)
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["generation"] == 2 and r.json()["status"]["replicas"] == 5
    # an update that changes nothing writes nothing
    same = client.get(url).json()
    r = client.put(url, json=same)
    assert r.status_code == 200 and r.json()["metadata"]["resourceVersion"] == same["metadata"]["resourceVersion"]


def test_status_subresource_changes_only_status(client: httpx.Client, namespace: str) -> None:
    p = create(client, "Pod", pod("st"), namespace)
    url = object_url("", "Pod", "st", namespace)
    body = {**p, "status": {"phase": "Running", "podIP": "10.1.0.9"},
            "spec": {**p["spec"], "activeDeadlineSeconds": 5},
            "metadata": {**p["metadata"], "labels": {"sneaky": "label"}}}
    r = client.put(url + "/status", json=body)
    assert r.status_code == 200, r.text
    got = client.get(url).json()
    assert got["status"]["phase"] == "Running" and got["status"]["podIP"] == "10.1.0.9"
    assert "activeDeadlineSeconds" not in got["spec"] and "sneaky" not in got["metadata"].get("labels", {})
    # and the main resource ignores status
    r = client.patch(url, json={"status": {"phase": "Failed"}}, headers=MERGE)
    assert r.status_code == 200 and client.get(url).json()["status"]["phase"] == "Running"
    assert client.get(url + "/status").json()["status"]["phase"] == "Running"


def test_scale_subresource(client: httpx.Client, namespace: str) -> None:
    create(client, "Deployment", sample("Deployment", "sc"), namespace)
    url = object_url("", "Deployment", "sc", namespace, sub="scale")
    s = client.get(url).json()
    assert s["kind"] == "Scale" and s["apiVersion"] == "autoscaling/v1"
    assert s["spec"]["replicas"] == 2 and s["status"]["selector"] == "app=sample"
    s["spec"]["replicas"] = 4
    r = client.put(url, json=s)
    assert r.status_code == 200 and r.json()["spec"]["replicas"] == 4
    r = client.patch(url, json={"spec": {"replicas": 1}}, headers=MERGE)
    assert r.status_code == 200 and r.json()["spec"]["replicas"] == 1
    d = client.get(object_url("", "Deployment", "sc", namespace)).json()
    assert d["spec"]["replicas"] == 1 and d["metadata"]["generation"] == 3
    r = client.patch(url, json={"spec": {"replicas": -1}}, headers=MERGE)
    assert r.status_code == 422 and r.json()["details"]["causes"][0]["field"] == "spec.replicas"
    # stale resourceVersion on the Scale
    r = client.put(url, json=s)
    assert r.status_code == 409


def test_binding(client: httpx.Client, namespace: str) -> None:
    create(client, "Pod", pod("tobind"), namespace)
    url = object_url("", "Pod", "tobind", namespace, sub="binding")
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "tobind"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "node-a"}}
    r = client.post(url, json=binding)
    assert r.status_code == 201 and r.json()["status"] == "Success"
    got = client.get(object_url("", "Pod", "tobind", namespace)).json()
    assert got["spec"]["nodeName"] == "node-a"
    assert any(c["type"] == "PodScheduled" and c["status"] == "True" for c in got["status"]["conditions"])
    r = client.post(url, json={**binding, "target": {"kind": "Node", "name": "node-b"}})
    assert r.status_code == 409 and "already assigned" in r.json()["message"]
    r = client.post(object_url("", "Pod", "nosuchpod", namespace, sub="binding"),
                    json={**binding, "metadata": {"name": "nosuchpod"}})
    assert r.status_code == 404


# ---------------------------------------------------------------- deletion

def test_unscheduled_pod_is_removed_at_once(client: httpx.Client, namespace: str) -> None:
    create(client, "Pod", pod("loose"), namespace)
    r = client.delete(object_url("", "Pod", "loose", namespace))
    assert r.status_code == 200
    assert client.get(object_url("", "Pod", "loose", namespace)).status_code == 404


def test_graceful_pod_deletion(client: httpx.Client, namespace: str) -> None:
    p = pod("bound", node="node-a")
    p["spec"]["terminationGracePeriodSeconds"] = 20
    create(client, "Pod", p, namespace)
    url = object_url("", "Pod", "bound", namespace)
    r = client.delete(url)
    assert r.status_code == 200
    md = r.json()["metadata"]
    assert md["deletionTimestamp"].endswith("Z") and md["deletionGracePeriodSeconds"] == 20
    assert client.get(url).json()["metadata"]["deletionGracePeriodSeconds"] == 20
    # a second delete with a shorter grace shortens it
    r = client.delete(url + "?gracePeriodSeconds=5")
    assert r.json()["metadata"]["deletionGracePeriodSeconds"] == 5
    # the kubelet confirms with grace 0 (here in a DeleteOptions body)
    r = client.request("DELETE", url, json={"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0})
    assert r.status_code == 200
    assert client.get(url).status_code == 404


def test_finalizers_hold_deletion_until_removed(client: httpx.Client, namespace: str) -> None:
    cm = sample("ConfigMap", "fin")
    cm["metadata"]["finalizers"] = ["example.com/hold"]
    create(client, "ConfigMap", cm, namespace)
    url = object_url("", "ConfigMap", "fin", namespace)
    r = client.delete(url)
    assert r.status_code == 200 and r.json()["metadata"]["deletionTimestamp"]
    held = client.get(url).json()
    assert held["metadata"]["finalizers"] == ["example.com/hold"]
    r = client.patch(url, json={"metadata": {"finalizers": ["example.com/hold", "x/new"]}}, headers=MERGE)
    assert r.status_code == 422  # no new finalizers while deleting
    r = client.patch(url, json={"metadata": {"finalizers": None}}, headers=MERGE)
    assert r.status_code == 200
    assert client.get(url).status_code == 404


@pytest.mark.parametrize(("policy", "finalizer"), [("Foreground", "foregroundDeletion"), ("Orphan", "orphan")])
def test_propagation_policy_finalizers(client: httpx.Client, namespace: str, policy: str, finalizer: str) -> None:
    create(client, "Deployment", sample("Deployment", "prop"), namespace)
    url = object_url("", "Deployment", "prop", namespace)
    r = client.request("DELETE", url, json={"kind": "DeleteOptions", "propagationPolicy": policy})
    assert r.status_code == 200
    md = client.get(url).json()["metadata"]
    assert md["finalizers"] == [finalizer] and md["deletionTimestamp"]
    r = client.patch(url, json={"metadata": {"finalizers": []}}, headers=MERGE)
    assert r.status_code == 200 and client.get(url).status_code == 404


def test_background_delete_returns_status(client: httpx.Client, namespace: str) -> None:
    d = create(client, "Deployment", sample("Deployment", "bg"), namespace)
    r = client.delete(object_url("", "Deployment", "bg", namespace) + "?propagationPolicy=Background")
    assert r.status_code == 200
    body = r.json()
    assert body["kind"] == "Status" and body["status"] == "Success"
    assert body["details"] == {"name": "bg", "group": "apps", "kind": "deployments", "uid": d["metadata"]["uid"]}


def test_delete_collection_with_selector(client: httpx.Client, namespace: str) -> None:
    for i in range(4):
        create(client, "ConfigMap", sample("ConfigMap", f"dc-{i}", group="a" if i < 3 else "b"), namespace)
    r = client.delete(collection_url("", "ConfigMap", namespace) + "?labelSelector=group%3Da")
    assert r.status_code == 200 and len(r.json()["items"]) == 3
    left = client.get(collection_url("", "ConfigMap", namespace) + "?labelSelector=group").json()["items"]
    assert [i["metadata"]["name"] for i in left] == ["dc-3"]


# ---------------------------------------------------------------- namespaces

def test_builtin_namespaces_exist(client: httpx.Client) -> None:
    names = {n["metadata"]["name"] for n in client.get("/api/v1/namespaces").json()["items"]}
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names
    r = client.delete("/api/v1/namespaces/default")
    assert r.status_code == 403


def test_object_in_missing_namespace_is_404(client: httpx.Client) -> None:
    r = client.post(collection_url("", "ConfigMap", "nowhere"), json=sample("ConfigMap", "x"))
    assert r.status_code == 404 and r.json()["details"] == {"name": "nowhere", "kind": "namespaces"}


def test_namespace_deletion_cascades(client: httpx.Client, namespace: str) -> None:
    doomed = f"{namespace}-doomed"
    create(client, "Namespace", sample("Namespace", doomed))
    create(client, "ConfigMap", sample("ConfigMap", "cm"), doomed)
    create(client, "Deployment", sample("Deployment", "d"), doomed)
    create(client, "Pod", pod("free"), doomed)
    create(client, "Pod", pod("onnode", node="node-a"), doomed)
    r = client.delete(f"/api/v1/namespaces/{doomed}")
    assert r.status_code == 200 and r.json()["status"]["phase"] == "Terminating"
    r = client.post(collection_url("", "ConfigMap", doomed), json=sample("ConfigMap", "late"))
    assert r.status_code == 403 and r.json()["reason"] == "Forbidden"
    assert "being terminated" in r.json()["message"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        left = {(k[0], k[2]) for k in dump(str(client.base_url)) if k[1] == doomed}
        if left == {("Pod", "onnode")}:
            break
        time.sleep(0.05)
    assert left == {("Pod", "onnode")}
    onnode = client.get(object_url("", "Pod", "onnode", doomed)).json()
    assert onnode["metadata"]["deletionTimestamp"]  # graceful: waits for its kubelet
    assert client.get(f"/api/v1/namespaces/{doomed}").json()["status"]["phase"] == "Terminating"
    client.delete(object_url("", "Pod", "onnode", doomed) + "?gracePeriodSeconds=0")
    wait_gone(client, f"/api/v1/namespaces/{doomed}")


# ---------------------------------------------------------------- list: selectors and paging

def test_list_selectors(client: httpx.Client, namespace: str) -> None:
    for i in range(6):
        # suite: tells this test's pods from other tests' in the list across all namespaces
        labels = {"tier": ["web", "db", "cache"][i % 3], "idx": str(i), "suite": namespace}
        if i % 2:
            labels["odd"] = "true"
        create(client, "Pod", pod(f"sel-{i}", node="node-a" if i < 2 else None, **labels), namespace)
    base = collection_url("", "Pod", namespace)

    def names(query: str) -> list[str]:
        r = client.get(base, params=query)
        assert r.status_code == 200, r.text
        return [i["metadata"]["name"] for i in r.json()["items"]]

    assert names("labelSelector=tier=web") == ["sel-0", "sel-3"]
    assert names("labelSelector=tier==web") == ["sel-0", "sel-3"]
    assert names("labelSelector=tier!=web,idx") == ["sel-1", "sel-2", "sel-4", "sel-5"]
    assert names("labelSelector=tier in (db,cache)") == ["sel-1", "sel-2", "sel-4", "sel-5"]
    assert names("labelSelector=tier notin (db,cache),idx") == ["sel-0", "sel-3"]
    assert names("labelSelector=odd") == ["sel-1", "sel-3", "sel-5"]
    assert names("labelSelector=!odd,idx") == ["sel-0", "sel-2", "sel-4"]
    assert names("fieldSelector=metadata.name=sel-4") == ["sel-4"]
    assert names("fieldSelector=spec.nodeName=node-a") == ["sel-0", "sel-1"]
    assert names(f"fieldSelector=spec.nodeName=,metadata.namespace={namespace}") == ["sel-2", "sel-3", "sel-4",
                                                                                     "sel-5"]
    assert names("fieldSelector=status.phase=Pending,metadata.name!=sel-0&labelSelector=tier=web") == ["sel-3"]
    # across all namespaces
    r = client.get("/api/v1/pods", params=f"labelSelector=tier=db,suite={namespace}")
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in r.json()["items"]] == [
        (namespace, "sel-1"), (namespace, "sel-4")]


def test_list_paging(client: httpx.Client, namespace: str) -> None:
    for i in range(25):
        create(client, "ConfigMap", sample("ConfigMap", f"page-{i:02d}", paged="yes"), namespace)
    seen: list[str] = []
    token = None
    pages = 0
    revisions = set()
    while True:
        params: dict[str, Any] = {"limit": 10, "labelSelector": "paged=yes"}
        if token:
            params["continue"] = token
        r = client.get(collection_url("", "ConfigMap", namespace), params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        pages += 1
        revisions.add(body["metadata"]["resourceVersion"])
        seen += [i["metadata"]["name"] for i in body["items"]]
        token = body["metadata"].get("continue")
        if not token:
            break
    assert pages == 3 and seen == [f"page-{i:02d}" for i in range(25)]
    assert len(revisions) == 1  # every page reports the first page's revision
    r = client.get(collection_url("", "ConfigMap", namespace), params={"limit": 5})
    assert r.json()["metadata"]["remainingItemCount"] == 20


# ---------------------------------------------------------------- watch

def test_watch_from_revision_gets_every_change_once_in_order(client: httpx.Client, namespace: str) -> None:
    start = rv(create(client, "ConfigMap", sample("ConfigMap", "w-base"), namespace))
    expected: list[tuple[str, str, int]] = []
    for i in range(10):
        o = create(client, "ConfigMap", sample("ConfigMap", f"w-{i}"), namespace)
        expected.append(("ADDED", f"w-{i}", rv(o)))
    for i in range(0, 10, 2):
        o = client.patch(object_url("", "ConfigMap", f"w-{i}", namespace), json={"data": {"n": str(i)}},
                         headers=MERGE).json()
        expected.append(("MODIFIED", f"w-{i}", rv(o)))
    for i in range(0, 10, 3):
        o = client.delete(object_url("", "ConfigMap", f"w-{i}", namespace)).json()
        expected.append(("DELETED", f"w-{i}", int(o["metadata"]["resourceVersion"]) if "metadata" in o and
                         o["metadata"].get("resourceVersion") else -1))
    create(client, "Secret", sample("Secret", "not-watched"), namespace)  # another resource: not in this watch
    with httpx.Client(base_url=client.base_url, timeout=30) as w, w.stream(
            "GET", collection_url("", "ConfigMap", namespace),
            params={"watch": "1", "resourceVersion": str(start)}) as resp:
        assert resp.status_code == 200
        events = read_events(resp, len(expected))
    got = [(e["type"], e["object"]["metadata"]["name"], rv(e["object"])) for e in events]
    assert [g[:2] for g in got] == [e[:2] for e in expected]
    assert [g[2] for g in got] == sorted({g[2] for g in got})  # strictly increasing, no duplicates
    for g, e in zip(got, expected, strict=True):
        if e[2] != -1:
            assert g[2] == e[2]


def test_watch_live_and_initial_events(client: httpx.Client, namespace: str) -> None:
    create(client, "ConfigMap", sample("ConfigMap", "existing", live="1"), namespace)
    got: list[Obj] = []

    def watcher() -> None:
        with httpx.Client(base_url=client.base_url, timeout=30) as w, w.stream(
                "GET", collection_url("", "ConfigMap", namespace),
                params={"watch": "true", "labelSelector": "live=1", "timeoutSeconds": "5"}) as resp:
            got.extend(read_events(resp, 4))

    t = threading.Thread(target=watcher)
    t.start()
    time.sleep(0.5)
    create(client, "ConfigMap", sample("ConfigMap", "fresh", live="1"), namespace)
    create(client, "ConfigMap", sample("ConfigMap", "other", live="0"), namespace)
    # stops matching the selector -> DELETED for this watch
    client.patch(object_url("", "ConfigMap", "fresh", namespace), json={"metadata": {"labels": {"live": "0"}}},
                 headers=MERGE)
    # starts matching -> ADDED
    client.patch(object_url("", "ConfigMap", "other", namespace), json={"metadata": {"labels": {"live": "1"}}},
                 headers=MERGE)
    t.join(10)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in got] == [
        ("ADDED", "existing"), ("ADDED", "fresh"), ("DELETED", "fresh"), ("ADDED", "other")]


def test_watch_timeout_and_bookmarks(make_api_server: Any) -> None:
    server = make_api_server(extra_args=["--watch-bookmark-interval", "0.3"])
    with httpx.Client(base_url=server.url, timeout=30) as c:
        start = c.get("/api/v1/namespaces/default/configmaps").json()["metadata"]["resourceVersion"]
        t0 = time.monotonic()
        with c.stream("GET", "/api/v1/namespaces/default/configmaps",
                      params={"watch": "1", "resourceVersion": start, "allowWatchBookmarks": "true",
                              "timeoutSeconds": "2"}) as resp:
            events = read_events(resp)
        assert 1.5 < time.monotonic() - t0 < 6
    assert len(events) >= 3 and all(e["type"] == "BOOKMARK" for e in events)
    for e in events:
        assert e["object"]["metadata"] == {"resourceVersion": e["object"]["metadata"]["resourceVersion"]}
        assert int(e["object"]["metadata"]["resourceVersion"]) >= int(start)


def test_watch_from_compacted_revision_is_gone(make_api_server: Any) -> None:
    server = make_api_server(extra_args=["--compaction-keep", "3", "--compaction-interval", "0.2"])
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for i in range(20):
            create(c, "ConfigMap", sample("ConfigMap", f"churn-{i}"))
        time.sleep(1.0)  # a few compaction runs
        with c.stream("GET", "/api/v1/namespaces/default/configmaps",
                      params={"watch": "1", "resourceVersion": "2"}) as resp:
            assert resp.status_code == 200
            events = read_events(resp)
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert status["kind"] == "Status" and status["code"] == 410 and status["reason"] == "Expired"


# ---------------------------------------------------------------- tables and discovery

def test_tables(client: httpx.Client, namespace: str) -> None:
    create(client, "Pod", pod("tab-a", app="t"), namespace)
    create(client, "Pod", pod("tab-b", app="t"), namespace)
    r = client.get(collection_url("", "Pod", namespace) + "?labelSelector=app%3Dt", headers={"Accept": TABLE})
    assert r.status_code == 200
    t = r.json()
    assert t["kind"] == "Table" and t["apiVersion"] == "meta.k8s.io/v1"
    names = [c["name"] for c in t["columnDefinitions"]]
    assert names[0] == "Name" and "Status" in names and "Age" in names
    assert [row["cells"][0] for row in t["rows"]] == ["tab-a", "tab-b"]
    assert len(t["rows"][0]["cells"]) == len(names)
    assert t["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    assert t["metadata"]["resourceVersion"]
    r = client.get(object_url("", "Pod", "tab-a", namespace) + "?includeObject=Object", headers={"Accept": TABLE})
    assert r.json()["rows"][0]["object"]["kind"] == "Pod"
    r = client.get(object_url("", "Pod", "tab-a", namespace) + "?includeObject=None", headers={"Accept": TABLE})
    assert "object" not in r.json()["rows"][0]
    # watch with as=Table: each event carries a one-row Table
    with httpx.Client(base_url=client.base_url, timeout=30) as w, w.stream(
            "GET", collection_url("", "Pod", namespace), params={"watch": "1", "labelSelector": "app=t"},
            headers={"Accept": TABLE}) as resp:
        events = read_events(resp, 2)
    assert [e["object"]["kind"] for e in events] == ["Table", "Table"]
    assert [e["object"]["rows"][0]["cells"][0] for e in events] == ["tab-a", "tab-b"]


def test_discovery(client: httpx.Client) -> None:
    v = client.get("/version").json()
    assert v["major"] == "1" and v["gitVersion"].startswith("v1.32.0-mkube")
    assert client.get("/api").json()["versions"] == ["v1"]
    groups = {g["name"]: g for g in client.get("/apis").json()["groups"]}
    assert {"apps", "coordination.k8s.io"} <= set(groups)
    assert groups["apps"]["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}
    assert client.get("/apis/apps").json()["kind"] == "APIGroup"
    core = {r["name"]: r for r in client.get("/api/v1").json()["resources"]}
    assert core["pods"]["shortNames"] == ["po"] and core["pods"]["namespaced"] is True
    assert "all" in core["pods"]["categories"] and "watch" in core["pods"]["verbs"]
    assert core["pods/status"]["verbs"] == ["get", "patch", "update"]
    assert core["pods/binding"]["kind"] == "Binding" and core["pods/log"]["verbs"] == ["get"]
    assert core["nodes"]["namespaced"] is False and core["namespaces"]["shortNames"] == ["ns"]
    apps = {r["name"]: r for r in client.get("/apis/apps/v1").json()["resources"]}
    scale = apps["deployments/scale"]
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")
    assert client.get("/apis/coordination.k8s.io/v1").json()["resources"][0]["name"] == "leases"
    for path in ("/healthz", "/livez", "/readyz"):
        assert client.get(path).status_code == 200
    metrics = client.get("/metrics").text
    assert "apiserver_request_total" in metrics and "apiserver_storage_revision" in metrics
    oa = client.get("/openapi/v3").json()
    doc = client.get(oa["paths"]["apis/apps/v1"]["serverRelativeURL"]).json()
    patch_op = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert any(p["name"] == "fieldValidation" for p in patch_op["parameters"])


# ---------------------------------------------------------------- pod logs (proxied to the kubelet)

class _FakeKubelet(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = f"log of {self.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_pod_log_is_proxied_to_the_kubelet(client: httpx.Client, namespace: str) -> None:
    log_node, dead_node = f"{namespace}-log-node", f"{namespace}-dead-node"  # nodes: cluster-wide names
    kubelet = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeKubelet)
    threading.Thread(target=kubelet.serve_forever, daemon=True).start()
    try:
        node = sample("Node", log_node)
        node["status"]["daemonEndpoints"] = {"kubeletEndpoint": {"Port": kubelet.server_address[1]}}
        create(client, "Node", node)
        create(client, "Pod", pod("logged", node=log_node), namespace)
        r = client.get(object_url("", "Pod", "logged", namespace, sub="log") + "?tailLines=10&timestamps=true")
        assert r.status_code == 200, r.text
        assert r.text.startswith(f"log of /containerLogs/{namespace}/logged/app?")
        assert "tailLines=10" in r.text and "timestamps=true" in r.text
        r = client.get(object_url("", "Pod", "logged", namespace, sub="log") + "?container=nope")
        assert r.status_code == 400
    finally:
        kubelet.shutdown()
    create(client, "Pod", pod("orphaned", node="no-such-node"), namespace)
    r = client.get(object_url("", "Pod", "orphaned", namespace, sub="log"))
    assert r.status_code == 404 and "no-such-node" in r.json()["message"]
    node = sample("Node", dead_node)
    node["status"]["daemonEndpoints"] = {"kubeletEndpoint": {"Port": 1}}  # nothing listens there
    create(client, "Node", node)
    create(client, "Pod", pod("stranded", node=dead_node), namespace)
    r = client.get(object_url("", "Pod", "stranded", namespace, sub="log"))
    assert r.status_code == 503 and r.json()["reason"] == "ServiceUnavailable"
    r = client.post(object_url("", "Pod", "stranded", namespace, sub="exec"))
    assert r.status_code == 400 and "at least 1 command" in r.json()["message"]
    r = client.post(object_url("", "Pod", "stranded", namespace, sub="exec"), params={"command": ["true"]})
    assert r.status_code == 503 and r.json()["reason"] == "ServiceUnavailable"


class _IPv6Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6


def test_pod_log_reaches_a_kubelet_on_an_ipv6_address(client: httpx.Client, namespace: str) -> None:
    """The kubelet URL puts an IPv6 node address in brackets; a garbage address is a 503."""
    v6_node, junk_node = f"{namespace}-v6-node", f"{namespace}-junk-node"
    kubelet = _IPv6Server(("::1", 0), _FakeKubelet)
    threading.Thread(target=kubelet.serve_forever, daemon=True).start()
    try:
        node = sample("Node", v6_node)
        node["status"]["addresses"] = [{"type": "InternalIP", "address": "::1"}]
        node["status"]["daemonEndpoints"] = {"kubeletEndpoint": {"Port": kubelet.server_address[1]}}
        create(client, "Node", node)
        create(client, "Pod", pod("logged-v6", node=v6_node), namespace)
        r = client.get(object_url("", "Pod", "logged-v6", namespace, sub="log"))
        assert r.status_code == 200, r.text
        assert r.text.startswith(f"log of /containerLogs/{namespace}/logged-v6/app")
    finally:
        kubelet.shutdown()
    # an address that is no IP or DNS name is never pasted into the URL ("127.0.0.1/x"
    # would send the request to 127.0.0.1 with a path of the node's choosing)
    for i, junk in enumerate(("a b/c@d", "127.0.0.1/24", "user@127.0.0.1", "[::1]")):
        node = sample("Node", f"{junk_node}-{i}")
        node["status"]["addresses"] = [{"type": "InternalIP", "address": junk}]
        node["status"]["daemonEndpoints"] = {"kubeletEndpoint": {"Port": 10250}}
        create(client, "Node", node)
        create(client, "Pod", pod(f"junk-addressed-{i}", node=f"{junk_node}-{i}"), namespace)
        r = client.get(object_url("", "Pod", f"junk-addressed-{i}", namespace, sub="log"))
        assert r.status_code == 503 and r.json()["reason"] == "ServiceUnavailable", (junk, r.text)
        assert "no reachable kubelet endpoint" in r.json()["message"]


# ---------------------------------------------------------------- durability

def test_restart_keeps_every_object_and_revision(api_server: Any) -> None:
    with httpx.Client(base_url=api_server.url, timeout=30) as c:
        for kind in ("ConfigMap", "Secret", "Deployment", "Service", "Pod"):
            create(c, kind, sample(kind, f"keep-{kind.lower()}"))
        c.patch(object_url("", "ConfigMap", "keep-configmap"), json={"data": {"v": "2"}}, headers=MERGE)
        c.delete(object_url("", "Secret", "keep-secret"))
        revision = c.get("/api/v1/namespaces").json()["metadata"]["resourceVersion"]
    before = dump(api_server.url)
    api_server.stop()
    api_server.start()
    after = dump(api_server.url)
    assert after == before
    with httpx.Client(base_url=api_server.url, timeout=30) as c:
        assert c.get("/api/v1/namespaces").json()["metadata"]["resourceVersion"] == revision
        nxt = create(c, "ConfigMap", sample("ConfigMap", "after-restart"))
        assert rv(nxt) > int(revision)


def test_kill_during_write_burst_keeps_acknowledged_writes(api_server: Any) -> None:
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(worker: int) -> None:
        with httpx.Client(base_url=api_server.url, timeout=10) as c:
            i = 0
            while not stop.is_set():
                name = f"burst-{worker}-{i}"
                i += 1
                try:
                    r = c.post(collection_url("", "ConfigMap"), json=sample("ConfigMap", name))
                except httpx.HTTPError:
                    return
                if r.status_code == 201:
                    with lock:
                        acknowledged.append(name)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(acknowledged) < 40 and time.monotonic() < deadline:  # mid-burst, whatever the machine's speed
        time.sleep(0.05)
    api_server.kill()
    stop.set()
    for t in threads:
        t.join(15)
    assert len(acknowledged) > 20
    api_server.start()
    present = {k[2] for k in dump(api_server.url) if k[0] == "ConfigMap"}
    missing = [n for n in acknowledged if n not in present]
    assert not missing, f"{len(missing)} acknowledged creates lost: {missing[:5]}"
