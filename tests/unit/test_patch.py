"""Merge patch, JSON patch, strategic merge patch and kubectl's three-way merge."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mkube.api.patch import (
    PatchConflict,
    PatchError,
    create_two_way_patch,
    json_patch,
    merge_patch,
    strategic_merge_patch,
    three_way_merge,
)


def _deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}, "finalizers": ["a/x"]},
        "spec": {
            "replicas": 2,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "web", "image": "nginx:1", "args": ["a", "b"],
                         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                         "ports": [{"containerPort": 80, "protocol": "TCP"}]},
                        {"name": "sidecar", "image": "busybox"},
                    ],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                    "tolerations": [{"key": "a", "operator": "Exists"}],
                },
            },
        },
    }


# ---------------------------------------------------------------- RFC 7386

def test_merge_patch_rfc7386_examples() -> None:
    assert merge_patch({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": "b"}, {"b": "c"}) == {"a": "b", "b": "c"}
    assert merge_patch({"a": "b"}, {"a": None}) == {}
    assert merge_patch({"a": "b", "b": "c"}, {"a": None}) == {"b": "c"}
    assert merge_patch({"a": ["b"]}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": "c"}, {"a": ["b"]}) == {"a": ["b"]}
    assert merge_patch({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}) == {"a": {"b": "d"}}
    assert merge_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert merge_patch(["a", "b"], ["c", "d"]) == ["c", "d"]
    assert merge_patch({"a": "b"}, ["c"]) == ["c"]
    assert merge_patch({"e": None}, {"a": 1}) == {"e": None, "a": 1}
    assert merge_patch([1, 2], {"a": "b", "c": None}) == {"a": "b"}
    assert merge_patch({}, {"a": {"bb": {"ccc": None}}}) == {"a": {"bb": {}}}


def test_merge_patch_does_not_mutate_inputs() -> None:
    obj, patch = _deployment(), {"spec": {"replicas": 5, "template": {"metadata": {"labels": {"v": "2"}}}}}
    before, pbefore = copy.deepcopy(obj), copy.deepcopy(patch)
    out = merge_patch(obj, patch)
    assert obj == before and patch == pbefore
    assert out["spec"]["replicas"] == 5
    assert out["spec"]["template"]["metadata"]["labels"] == {"app": "web", "v": "2"}
    # lists are replaced whole by a merge patch
    out = merge_patch(obj, {"spec": {"template": {"spec": {"containers": [{"name": "x", "image": "y"}]}}}})
    assert out["spec"]["template"]["spec"]["containers"] == [{"name": "x", "image": "y"}]


# ---------------------------------------------------------------- RFC 6902

def test_json_patch_operations() -> None:
    obj = _deployment()
    out = json_patch(obj, [
        {"op": "replace", "path": "/spec/replicas", "value": 3},
        {"op": "add", "path": "/metadata/labels/tier", "value": "fe"},
        {"op": "remove", "path": "/spec/template/spec/containers/1"},
        {"op": "test", "path": "/spec/replicas", "value": 3},
        {"op": "copy", "from": "/metadata/labels/app", "path": "/metadata/labels/copy"},
    ])
    assert out["spec"]["replicas"] == 3
    assert out["metadata"]["labels"] == {"app": "web", "tier": "fe", "copy": "web"}
    assert [c["name"] for c in out["spec"]["template"]["spec"]["containers"]] == ["web"]
    assert obj == _deployment()


def test_json_patch_errors() -> None:
    with pytest.raises(PatchConflict, match="test operation failed") as exc:
        json_patch(_deployment(), [{"op": "test", "path": "/spec/replicas", "value": 9}])
    assert exc.value.path == "spec.replicas"
    with pytest.raises(PatchConflict) as exc2:
        json_patch(_deployment(), [{"op": "remove", "path": "/spec/nope/0"}])
    assert exc2.value.path == "spec.nope[0]"
    with pytest.raises(PatchError):
        json_patch(_deployment(), {"op": "add"})
    with pytest.raises(PatchError):
        json_patch(_deployment(), [{"op": "add", "value": 1}])
    with pytest.raises(ValueError):
        json_patch(_deployment(), [{"op": "frobnicate", "path": "/a"}])


# ---------------------------------------------------------------- strategic merge patch

def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return obj["spec"]["template"]["spec"]["containers"]  # type: ignore[no-any-return]


def test_strategic_merges_containers_by_name() -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}}}}
    out = strategic_merge_patch(_deployment(), patch, "Deployment")
    cs = _containers(out)
    assert [c["name"] for c in cs] == ["web", "sidecar"]
    assert cs[0]["image"] == "nginx:2"
    assert cs[0]["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    # a new name is appended
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "new", "image": "x"}]}}}}
    assert [c["name"] for c in _containers(strategic_merge_patch(_deployment(), patch, "Deployment"))] == [
        "web", "sidecar", "new"]


def test_strategic_nested_lists_env_and_ports() -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{
        "name": "web",
        "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}, {"name": "A", "$patch": "delete"}],
        "ports": [{"containerPort": 443}],
        "args": ["c"],  # atomic list: replaced
    }]}}}}
    c = _containers(strategic_merge_patch(_deployment(), patch, "Deployment"))[0]
    assert c["env"] == [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}]
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}]
    assert c["args"] == ["c"]


def test_strategic_atomic_lists_replace() -> None:
    patch = {"spec": {"template": {"spec": {"tolerations": [{"key": "b", "operator": "Exists"}]}}}}
    out = strategic_merge_patch(_deployment(), patch, "Deployment")
    assert out["spec"]["template"]["spec"]["tolerations"] == [{"key": "b", "operator": "Exists"}]
    # unknown kinds: lists replace, maps merge
    out = strategic_merge_patch({"a": [1, 2], "m": {"x": 1}}, {"a": [3], "m": {"y": 2}}, "Unknown")
    assert out == {"a": [3], "m": {"x": 1, "y": 2}}


def test_strategic_service_ports_by_port() -> None:
    svc = {"spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080},
                              {"name": "https", "port": 443}]}}
    out = strategic_merge_patch(svc, {"spec": {"ports": [{"port": 80, "nodePort": 30080}]}}, "Service")
    assert out["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080},
                                    {"name": "https", "port": 443}]


def test_strategic_null_deletes_and_patch_directives() -> None:
    obj = _deployment()
    out = strategic_merge_patch(obj, {"metadata": {"labels": {"app": None, "x": "y"}}}, "Deployment")
    assert out["metadata"]["labels"] == {"x": "y"}
    # $patch: replace on a map
    out = strategic_merge_patch(obj, {"spec": {"strategy": {"$patch": "replace", "type": "Recreate"}}}, "Deployment")
    assert out["spec"]["strategy"] == {"type": "Recreate"}
    # $patch: delete on a map
    out = strategic_merge_patch(obj, {"spec": {"strategy": {"$patch": "delete"}}}, "Deployment")
    assert "strategy" not in out["spec"]
    # $patch: replace on a list
    patch = {"spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "i"}]}}}}
    assert _containers(strategic_merge_patch(obj, patch, "Deployment")) == [{"name": "only", "image": "i"}]
    # $patch: merge is the default
    out = strategic_merge_patch(obj, {"spec": {"$patch": "merge", "replicas": 7}}, "Deployment")
    assert out["spec"]["replicas"] == 7 and "template" in out["spec"]
    assert obj == _deployment()


def test_strategic_retain_keys() -> None:
    patch: dict[str, Any] = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    out = strategic_merge_patch(_deployment(), patch, "Deployment")
    assert out["spec"]["strategy"] == {"type": "Recreate"}
    patch = {"spec": {"template": {"spec": {"volumes": [
        {"name": "data", "$retainKeys": ["name", "hostPath"], "hostPath": {"path": "/x"}}]}}}}
    vols = strategic_merge_patch(_deployment(), patch, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert vols == [{"name": "data", "hostPath": {"path": "/x"}}]


def test_strategic_primitive_merge_lists() -> None:
    obj = _deployment()
    out = strategic_merge_patch(obj, {"metadata": {"finalizers": ["b/y", "a/x"]}}, "Deployment")
    assert out["metadata"]["finalizers"] == ["a/x", "b/y"]  # merged as a set
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a/x"]}}
    assert strategic_merge_patch(obj, patch, "Deployment")["metadata"]["finalizers"] == []


def test_strategic_set_element_order() -> None:
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "web"}],
        "containers": [{"name": "web", "image": "nginx:3"}]}}}}
    cs = _containers(strategic_merge_patch(_deployment(), patch, "Deployment"))
    assert [c["name"] for c in cs] == ["sidecar", "web"]
    assert cs[1]["image"] == "nginx:3"
    # items only on the server keep their place relative to the ordered ones
    obj: dict[str, Any] = {"metadata": {"finalizers": ["s1", "a", "s2", "b"]}}
    patch2: dict[str, Any] = {"metadata": {"$setElementOrder/finalizers": ["b", "a"], "finalizers": ["b"]}}
    out = strategic_merge_patch(obj, patch2, "Pod")
    assert set(out["metadata"]["finalizers"]) == {"s1", "a", "s2", "b"}
    assert out["metadata"]["finalizers"].index("b") < out["metadata"]["finalizers"].index("a")


def test_strategic_conditions_by_type() -> None:
    pod = {"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}]}}
    out = strategic_merge_patch(pod, {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}, "Pod")
    assert out["status"]["conditions"] == [{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}]


def test_strategic_owner_references_by_uid() -> None:
    obj = {"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}, {"uid": "2", "name": "b"}]}}
    out = strategic_merge_patch(obj, {"metadata": {"ownerReferences": [{"uid": "2", "$patch": "delete"}]}}, "Pod")
    assert out["metadata"]["ownerReferences"] == [{"uid": "1", "name": "a"}]


def test_strategic_errors() -> None:
    with pytest.raises(PatchError):
        strategic_merge_patch(_deployment(), [1], "Deployment")
    with pytest.raises(PatchError, match="merge key"):
        strategic_merge_patch(_deployment(), {"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}},
                              "Deployment")
    with pytest.raises(PatchError, match="unknown patch directive"):
        strategic_merge_patch(_deployment(), {"spec": {"$patch": "explode"}}, "Deployment")


# ---------------------------------------------------------------- three-way merge (kubectl apply)

def _apply(original: dict[str, Any] | None, modified: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    patch = three_way_merge(original, modified, current, "Deployment")
    return strategic_merge_patch(current, patch, "Deployment")


def test_three_way_first_apply_keeps_server_fields() -> None:
    modified = _deployment()
    current = _deployment()
    current["status"] = {"replicas": 2}
    current["metadata"]["uid"] = "u1"
    assert three_way_merge(None, modified, current, "Deployment") == {}
    assert _apply(None, modified, current) == current


def test_three_way_changes_and_deletions() -> None:
    original = _deployment()
    current = _deployment()
    current["metadata"]["annotations"] = {"other-writer": "keep"}  # set by someone else
    current["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "INJECTED", "value": "x"})
    modified = _deployment()
    modified["spec"]["replicas"] = 4
    del modified["metadata"]["labels"]  # removed by the user since the last apply
    c0 = modified["spec"]["template"]["spec"]["containers"][0]
    c0["image"] = "nginx:2"
    c0["env"] = [{"name": "B", "value": "2"}]  # A removed
    del c0["args"]
    modified["spec"]["template"]["spec"]["containers"].pop(1)  # sidecar removed

    out = _apply(original, modified, current)
    assert out["spec"]["replicas"] == 4
    assert "labels" not in out["metadata"]
    assert out["metadata"]["annotations"] == {"other-writer": "keep"}
    cs = out["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in cs] == ["web"]
    assert cs[0]["image"] == "nginx:2"
    assert "args" not in cs[0]
    assert {e["name"] for e in cs[0]["env"]} == {"B", "INJECTED"}
    assert cs[0]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]


def test_three_way_patch_shape_matches_kubectl() -> None:
    original = _deployment()
    modified = _deployment()
    modified["spec"]["template"]["spec"]["containers"].pop(1)
    patch = three_way_merge(original, modified, _deployment(), "Deployment")
    tspec = patch["spec"]["template"]["spec"]
    assert tspec["containers"] == [{"name": "sidecar", "$patch": "delete"}]
    assert tspec["$setElementOrder/containers"] == [{"name": "web"}]


def test_three_way_retain_keys_drops_defaulted_rolling_update() -> None:
    original = _deployment()
    del original["spec"]["strategy"]["rollingUpdate"]
    modified = copy.deepcopy(original)
    modified["spec"]["strategy"] = {"type": "Recreate"}
    current = _deployment()  # the server defaulted rollingUpdate
    patch = three_way_merge(original, modified, current, "Deployment")
    assert patch["spec"]["strategy"]["$retainKeys"] == ["type"]
    assert _apply(original, modified, current)["spec"]["strategy"] == {"type": "Recreate"}


def test_three_way_primitive_set_deletion() -> None:
    original = {"metadata": {"finalizers": ["a/x", "b/y"]}}
    modified = {"metadata": {"finalizers": ["b/y"]}}
    current = {"metadata": {"finalizers": ["a/x", "b/y", "c/z"]}}
    patch = three_way_merge(original, modified, current, "Pod")
    assert patch["metadata"]["$deleteFromPrimitiveList/finalizers"] == ["a/x"]
    out = strategic_merge_patch(current, patch, "Pod")
    assert sorted(out["metadata"]["finalizers"]) == ["b/y", "c/z"]


def test_two_way_patch_roundtrip() -> None:
    a, b = _deployment(), _deployment()
    b["spec"]["replicas"] = 9
    b["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]
    del b["metadata"]["finalizers"]
    patch = create_two_way_patch(a, b, "Deployment")
    assert strategic_merge_patch(a, patch, "Deployment") == b
