"""Pure pieces of the API server: deletion planning, body decoding, Accept parsing,
the protobuf envelope, and the guarantee that a bug never leaks a traceback."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from mkube.api.errors import ApiError
from mkube.api.kinds import ResourceType, by_path
from mkube.apiserver import bodies, deletion, meta, patching, protobuf
from mkube.apiserver.app import create_app
from mkube.apiserver.deletion import DeleteOptions, plan_delete, should_remove_on_update
from mkube.apiserver.options import ApiServerOptions

PODS: ResourceType = by_path("", "v1", "pods")  # type: ignore[assignment]
CMS: ResourceType = by_path("", "v1", "configmaps")  # type: ignore[assignment]


def _pod(node: str | None = None, phase: str = "Pending", **md: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "x"}], "terminationGracePeriodSeconds": 12}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": "p", "generation": 1, **md}, "spec": spec, "status": {"phase": phase}}


def test_plan_delete_pods() -> None:
    assert plan_delete(PODS, _pod(), DeleteOptions())[0] == "remove"  # unscheduled
    assert plan_delete(PODS, _pod("n", "Succeeded"), DeleteOptions())[0] == "remove"  # terminal
    action, new = plan_delete(PODS, _pod("n"), DeleteOptions())
    assert action == "update" and new["metadata"]["deletionGracePeriodSeconds"] == 12
    assert new["metadata"]["generation"] == 2
    again = plan_delete(PODS, new, DeleteOptions())
    assert again[0] == "noop"
    assert plan_delete(PODS, new, DeleteOptions(grace_period=0))[0] == "remove"
    assert plan_delete(PODS, _pod("n"), DeleteOptions(grace_period=0))[0] == "remove"


def test_plan_delete_finalizers_and_policies() -> None:
    cm = {"metadata": {"name": "c", "finalizers": ["x/y"]}}
    action, new = plan_delete(CMS, cm, DeleteOptions())
    assert action == "update" and new["metadata"]["deletionGracePeriodSeconds"] == 0
    assert not should_remove_on_update(CMS, new)
    new["metadata"]["finalizers"] = []
    assert should_remove_on_update(CMS, new)
    action, new = plan_delete(CMS, {"metadata": {"name": "c"}}, DeleteOptions(propagation="Foreground"))
    assert action == "update" and new["metadata"]["finalizers"] == ["foregroundDeletion"]
    _, swapped = plan_delete(CMS, new, DeleteOptions(propagation="Orphan"))
    assert swapped["metadata"]["finalizers"] == ["orphan"]


def test_parse_delete_options() -> None:
    opts = deletion.parse_delete_options({"gracePeriodSeconds": "3"}, {"propagationPolicy": "Orphan",
                                                                        "preconditions": {"uid": "u"}}, False)
    assert (opts.grace_period, opts.propagation, opts.precondition_uid) == (3, "Orphan", "u")
    with pytest.raises(ApiError) as exc:
        deletion.parse_delete_options({"propagationPolicy": "Sideways"}, None, False)
    assert exc.value.code == 422


def test_decode_bodies() -> None:
    assert bodies.decode_object(b'{"a": 1}', "application/json") == {"a": 1}
    assert bodies.decode_object(b"a: 1\nb: [x]\n", "application/yaml") == {"a": 1, "b": ["x"]}
    assert bodies.decode_object(b"t: 2024-01-01\n", "application/yaml") == {"t": "2024-01-01"}
    for raw, ctype, code in ((b"[1]", "application/json", 400), (b"{", "application/json", 400),
                             (b"x", "text/plain", 415), (b'{"a":1,"a":2}', "application/json", 0)):
        if code == 0:
            with pytest.raises(ApiError) as exc:
                bodies.decode_object(raw, ctype, strict=True)
            assert exc.value.code == 400 and "duplicate" in exc.value.message
            continue
        with pytest.raises(ApiError) as exc:
            bodies.decode_object(raw, ctype)
        assert exc.value.code == code


def _nested(depth: int) -> Any:
    """A value `depth` containers deep: depth-1 lists around an empty object."""
    value: Any = {}
    for _ in range(depth - 1):
        value = [value]
    return value


def test_check_storable_bounds_what_can_be_served_back() -> None:
    bodies.check_storable(_nested(bodies.MAX_DEPTH), "x")  # the limit itself is fine
    bodies.check_storable({"a": 1, "b": [1.5, "s", None, True], "c": 2**64 - 1}, "x")
    bodies.check_storable(7, "x")  # a scalar patch document reaches here too
    bad = [(_nested(bodies.MAX_DEPTH + 1), "nested"), ({"n": float("nan")}, "cannot represent"),
           ([float("inf")], "cannot represent"), (float("-inf"), "cannot represent"),
           ({"big": 2**64}, "cannot be stored"), ({"s": "\ud800"}, "cannot be stored"),
           ({1: "non-string key"}, "cannot be stored")]
    for value, needle in bad:
        with pytest.raises(ApiError) as exc:
            bodies.check_storable(value, "the thing")
        assert exc.value.code == 400 and needle in exc.value.message and "the thing" in exc.value.message


def test_a_patch_whose_result_is_too_deep_is_refused() -> None:
    """Each document within the limit, the merged object beyond it: 400, and the
    original is untouched."""
    half = bodies.MAX_DEPTH // 2 + 5
    original = {"metadata": {"name": "c"}, "x": _nested(half)}
    deepest: Any = original["x"]
    pointer = "/x"
    while deepest and isinstance(deepest, list):
        deepest, pointer = deepest[0], pointer + "/0"
    doc = [{"op": "add", "path": pointer + "/y", "value": _nested(half)}]
    with pytest.raises(ApiError) as exc:
        patching.apply(CMS, bodies.JSON_PATCH, original, doc)
    assert exc.value.code == 400 and "nested" in exc.value.message
    assert original == {"metadata": {"name": "c"}, "x": _nested(half)}


def test_huge_grace_periods_and_offsets_do_not_overflow() -> None:
    far = meta.parse_rfc3339(meta.now_rfc3339(2**63))
    assert far is not None and far.year > 2100  # clamped to a century, not an OverflowError
    with pytest.raises(ApiError) as exc:
        deletion.parse_delete_options({"gracePeriodSeconds": str(2**63)}, None, False)
    assert exc.value.code == 422 and "gracePeriodSeconds" in str(exc.value.to_status())
    with pytest.raises(ApiError) as exc:
        deletion.parse_delete_options({}, {"gracePeriodSeconds": 1e300}, False)
    assert exc.value.code == 422
    action, new = plan_delete(PODS, {**_pod("n"), "spec": {**_pod("n")["spec"],
                                                           "terminationGracePeriodSeconds": 2**62}}, DeleteOptions())
    assert action == "update" and new["metadata"]["deletionGracePeriodSeconds"] == 2**62


def _varint(n: int) -> bytes:
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def _field(num: int, payload: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def test_protobuf_envelope() -> None:
    meta = _field(1, b"cm") + _field(3, b"") + _field(8, b"")  # empty namespace and creationTimestamp
    entry = _field(1, b"k") + _field(2, b"v")
    cm = _field(1, meta) + _field(2, entry)
    type_meta = _field(1, b"v1") + _field(2, b"ConfigMap")
    body = protobuf.MAGIC + _field(1, type_meta) + _field(2, cm)
    assert protobuf.decode(body) == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"},
                                     "data": {"k": "v"}}
    with pytest.raises(ApiError) as exc:
        protobuf.decode(protobuf.MAGIC + _field(1, type_meta) + _field(2, cm + _field(9, b"data")))
    assert exc.value.code == 415 and "field 9 of ConfigMap" in exc.value.message


def test_unexpected_errors_are_a_status_without_internals(tmp_path: Path) -> None:
    app = create_app(ApiServerOptions(data_dir=tmp_path, insecure_http=True))

    async def scenario() -> None:
        async with app.router.lifespan_context(app):
            ctx = app.state.ctx

            def broken(*args: Any, **kwargs: Any) -> Any:
                raise RuntimeError("secret internal detail")

            ctx.store.get = broken
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://mkube") as client:
                r = await client.get("/api/v1/namespaces/default/configmaps/x")
                assert r.status_code == 500
                body = r.json()
                assert body["kind"] == "Status" and body["reason"] == "InternalError"
                assert "secret internal detail" not in r.text and "Traceback" not in r.text
                assert (await client.get("/no/such/path")).json()["reason"] == "NotFound"
                assert (await client.request("OPTIONS", "/api/v1/pods")).json()["reason"] == "MethodNotAllowed"

    asyncio.run(scenario())
