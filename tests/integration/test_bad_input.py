"""Malformed and hostile requests: each gets the right 4xx Status (reason, and a
message naming the field), never a 500, and the store is left exactly as it was.

They run on the session's shared API server, in a namespace of their own. "The store is
left as it was" compares a dump of every object of the server taken just before and just
after each request; tests run one at a time and the other tests leave no background work
running (they wait for their namespaces to go), so nothing else writes in between."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.fixtures.apiserver import ApiServerProcess, SharedApiServer
from tests.integration.kube_samples import dump, pod, sample

Obj = dict[str, Any]
NS = "bad-input"  # made by the `server` fixture; no other test uses this name
PODS = f"/api/v1/namespaces/{NS}/pods"
DEPLOYS = f"/apis/apps/v1/namespaces/{NS}/deployments"
SERVICES = f"/api/v1/namespaces/{NS}/services"
CMS = f"/api/v1/namespaces/{NS}/configmaps"
MERGE = {"Content-Type": "application/merge-patch+json"}
JSONPATCH = {"Content-Type": "application/json-patch+json"}


def with_(obj: Obj, path: str, value: Any) -> Obj:
    """A copy of `obj` with the dotted `path` set (list indexes as digits)."""
    out = copy.deepcopy(obj)
    cur: Any = out
    parts = path.split(".")
    for part in parts[:-1]:
        cur = cur[int(part)] if part.isdigit() else cur.setdefault(part, {})
    last = parts[-1]
    if last.isdigit():
        cur[int(last)] = value
    else:
        cur[last] = value
    return out


DEPLOY = sample("Deployment", "bad-deploy")
POD = pod("bad-pod")


@dataclass
class Case:
    id: str
    method: str
    path: str
    code: int
    reason: str
    needle: str  # must appear in the message (usually the field)
    json_body: Any = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    cause_field: str | None = None  # for 422: a cause must name this field


def _deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


def _cm_json(name: str, x: bytes) -> bytes:
    """A ConfigMap whose extra field `x` holds the raw JSON `x`."""
    return b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"' + name.encode() + b'"},"x":' + x + b"}"


def _cm_yaml(name: str, x: bytes) -> bytes:
    return b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + name.encode() + b"}\nx: " + x + b"\n"


JSON_CT = {"Content-Type": "application/json"}
YAML_CT = {"Content-Type": "application/yaml"}


CASES = [
    Case("malformed-json", "POST", PODS, 400, "BadRequest", "JSON", raw=b'{"apiVersion": "v1", "kind": ',
         headers={"Content-Type": "application/json"}),
    Case("json-array-body", "POST", PODS, 400, "BadRequest", "JSON object", raw=b"[1, 2]",
         headers={"Content-Type": "application/json"}),
    Case("json-string-body", "POST", PODS, 400, "BadRequest", "JSON object", raw=b'"pod"',
         headers={"Content-Type": "application/json"}),
    Case("empty-body", "POST", PODS, 400, "BadRequest", "empty", raw=b"",
         headers={"Content-Type": "application/json"}),
    Case("nan-in-json", "POST", PODS, 400, "BadRequest", "JSON", raw=b'{"spec": NaN}',
         headers={"Content-Type": "application/json"}),
    Case("deeply-nested-json", "POST", PODS, 400, "BadRequest", "JSON", raw=_deep(100_000),
         headers={"Content-Type": "application/json"}),
    Case("invalid-utf8", "POST", PODS, 400, "BadRequest", "JSON", raw=b'{"metadata": {"name": "\xff\xfe"}}',
         headers={"Content-Type": "application/json"}),
    Case("malformed-yaml", "POST", PODS, 400, "BadRequest", "YAML", raw=b"metadata: [unclosed\n  name: x",
         headers={"Content-Type": "application/yaml"}),
    Case("two-yaml-documents", "POST", PODS, 400, "BadRequest", "exactly one YAML document",
         raw=b"a: 1\n---\nb: 2\n", headers={"Content-Type": "application/yaml"}),
    Case("yaml-alias-bomb", "POST", PODS, 400, "BadRequest", "alias",
         raw=b"a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
             b"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
             b"f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\n",
         headers={"Content-Type": "application/yaml"}),
    Case("wrong-type-replicas", "POST", DEPLOYS, 422, "Invalid", "spec.replicas",
         json_body=with_(DEPLOY, "spec.replicas", "three"), cause_field="spec.replicas"),
    Case("containers-not-a-list", "POST", PODS, 422, "Invalid", "spec.containers",
         json_body=with_(POD, "spec.containers", {"name": "x"}), cause_field="spec.containers"),
    Case("metadata-not-an-object", "POST", PODS, 400, "BadRequest", "metadata",
         json_body=with_(POD, "metadata", "bad-pod")),
    Case("name-too-long", "POST", CMS, 422, "Invalid", "metadata.name",
         json_body=sample("ConfigMap", "a" * 254), cause_field="metadata.name"),
    Case("name-bad-characters", "POST", CMS, 422, "Invalid", "metadata.name",
         json_body=sample("ConfigMap", "Bad_Name!"), cause_field="metadata.name"),
    Case("name-unicode-junk", "POST", CMS, 422, "Invalid", "metadata.name",
         json_body=sample("ConfigMap", "h\u00e9llo-\u2713-\U0001f600"), cause_field="metadata.name"),
    Case("name-nul-byte", "POST", CMS, 422, "Invalid", "metadata.name",
         json_body=sample("ConfigMap", "a\u0000b"), cause_field="metadata.name"),
    Case("name-missing", "POST", CMS, 422, "Invalid", "metadata.name",
         json_body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}, cause_field="metadata.name"),
    Case("negative-replicas", "POST", DEPLOYS, 422, "Invalid", "spec.replicas",
         json_body=with_(DEPLOY, "spec.replicas", -1), cause_field="spec.replicas"),
    Case("duplicate-container-names", "POST", PODS, 422, "Invalid", "spec.containers[1].name",
         json_body=with_(POD, "spec.containers", [{"name": "app", "image": "a"}, {"name": "app", "image": "b"}]),
         cause_field="spec.containers[1].name"),
    Case("container-without-image", "POST", PODS, 422, "Invalid", "spec.containers[0].image",
         json_body=with_(POD, "spec.containers", [{"name": "app"}]), cause_field="spec.containers[0].image"),
    Case("selector-does-not-match-template", "POST", DEPLOYS, 422, "Invalid", "spec.template.metadata.labels",
         json_body=with_(DEPLOY, "spec.template.metadata.labels", {"app": "other"}),
         cause_field="spec.template.metadata.labels"),
    Case("container-port-out-of-range", "POST", PODS, 422, "Invalid", "containerPort",
         json_body=with_(POD, "spec.containers", [{"name": "app", "image": "a",
                                                   "ports": [{"containerPort": 70000}]}])),
    Case("service-port-zero", "POST", SERVICES, 422, "Invalid", "spec.ports[0].port",
         json_body=with_(sample("Service", "bad-svc"), "spec.ports", [{"port": 0}]),
         cause_field="spec.ports[0].port"),
    Case("label-value-too-long", "POST", CMS, 422, "Invalid", "metadata.labels",
         json_body=sample("ConfigMap", "lbl", key="v" * 64)),
    Case("label-key-invalid", "POST", CMS, 422, "Invalid", "metadata.labels",
         json_body=with_(sample("ConfigMap", "lbl2"), "metadata.labels", {"bad key!": "v"})),
    Case("body-10-MiB", "POST", CMS, 413, "RequestEntityTooLarge", "limit",
         json_body=with_(sample("ConfigMap", "huge"), "data", {"k": "x" * (10 * 1024 * 1024)})),
    Case("unknown-namespace", "POST", "/api/v1/namespaces/nowhere/configmaps", 404, "NotFound", "nowhere",
         json_body=sample("ConfigMap", "lost")),
    Case("kind-does-not-match-path", "POST", PODS, 400, "BadRequest", "kind",
         json_body=sample("Service", "svc-as-pod")),
    Case("apiversion-does-not-match-path", "POST", PODS, 400, "BadRequest", "apps/v1",
         json_body=with_(POD, "apiVersion", "apps/v1")),
    Case("namespace-differs-from-path", "POST", CMS, 400, "BadRequest", "namespace",
         json_body=with_(sample("ConfigMap", "elsewhere"), "metadata.namespace", "kube-system")),
    Case("put-name-differs-from-url", "PUT", CMS + "/seed-cm", 400, "BadRequest", "name",
         json_body=sample("ConfigMap", "other-name")),
    Case("patch-immutable-selector", "PATCH", DEPLOYS + "/seed-deploy", 422, "Invalid", "spec.selector",
         json_body={"spec": {"selector": {"matchLabels": {"app": "changed"}},
                             "template": {"metadata": {"labels": {"app": "changed"}}}}},
         headers=MERGE, cause_field="spec.selector"),
    Case("patch-immutable-pod-spec", "PATCH", PODS + "/seed-pod", 422, "Invalid", "spec",
         json_body={"spec": {"restartPolicy": "Never"}}, headers=MERGE),
    Case("patch-change-name", "PATCH", CMS + "/seed-cm", 422, "Invalid", "metadata.name",
         json_body={"metadata": {"name": "renamed"}}, headers=MERGE),
    Case("merge-patch-not-an-object", "PATCH", CMS + "/seed-cm", 400, "BadRequest", "JSON object",
         json_body=[{"op": "add"}], headers=MERGE),
    Case("json-patch-not-a-list", "PATCH", CMS + "/seed-cm", 400, "BadRequest", "array",
         json_body={"op": "add"}, headers=JSONPATCH),
    Case("json-patch-unknown-op", "PATCH", CMS + "/seed-cm", 400, "BadRequest", "frobnicate",
         json_body=[{"op": "frobnicate", "path": "/data"}], headers=JSONPATCH),
    Case("json-patch-test-fails", "PATCH", CMS + "/seed-cm", 422, "Invalid", "data",
         json_body=[{"op": "test", "path": "/data/key", "value": "nope"}], headers=JSONPATCH),
    Case("json-patch-missing-path", "PATCH", CMS + "/seed-cm", 422, "Invalid", "nothere",
         json_body=[{"op": "remove", "path": "/data/nothere"}], headers=JSONPATCH),
    Case("patch-malformed-json", "PATCH", CMS + "/seed-cm", 400, "BadRequest", "JSON", raw=b"{not json",
         headers=MERGE),
    Case("patch-wrong-type", "PATCH", DEPLOYS + "/seed-deploy", 422, "Invalid", "spec.replicas",
         json_body={"spec": {"replicas": "many"}}, headers=MERGE, cause_field="spec.replicas"),
    Case("patch-json-content-type", "PATCH", CMS + "/seed-cm", 415, "UnsupportedMediaType", "merge-patch",
         json_body={"data": {}}, headers={"Content-Type": "application/json"}),
    Case("server-side-apply", "PATCH", CMS + "/seed-cm", 415, "UnsupportedMediaType", "server-side apply",
         raw=b"data: {}", headers={"Content-Type": "application/apply-patch+yaml"}),
    Case("unsupported-content-type", "POST", CMS, 415, "UnsupportedMediaType", "text/plain", raw=b"name=x",
         headers={"Content-Type": "text/plain"}),
    Case("truncated-protobuf-body", "POST", CMS, 400, "BadRequest", "protobuf", raw=b"k8s\x00\x0a\x7f",
         headers={"Content-Type": "application/vnd.kubernetes.protobuf"}),
    Case("protobuf-without-envelope", "POST", CMS, 400, "BadRequest", "protobuf", raw=b"\x0a\x02hi",
         headers={"Content-Type": "application/vnd.kubernetes.protobuf"}),
    Case("protobuf-of-unsupported-kind", "POST", CMS, 415, "UnsupportedMediaType", "Widget",
         raw=b"k8s\x00\x0a\x14\x0a\x0aexample/v1\x12\x06Widget\x12\x00",
         headers={"Content-Type": "application/vnd.kubernetes.protobuf"}),
    Case("bad-label-selector-syntax", "GET", PODS + "?labelSelector=a+in+(b", 400, "BadRequest", "labelSelector"),
    Case("bad-label-selector-key", "GET", PODS + "?labelSelector=%3Dnokey", 400, "BadRequest", "labelSelector"),
    Case("unsupported-field-selector", "GET", PODS + "?fieldSelector=spec.foo%3Dbar", 400, "BadRequest",
         "spec.foo"),
    Case("bad-field-selector-syntax", "GET", PODS + "?fieldSelector=justaword", 400, "BadRequest",
         "justaword"),
    Case("bad-continue-token", "GET", PODS + "?limit=1&continue=%21%21garbage%21%21", 400, "BadRequest",
         "continue"),
    Case("bad-limit", "GET", PODS + "?limit=ten", 400, "BadRequest", "limit"),
    Case("negative-limit", "GET", PODS + "?limit=-5", 400, "BadRequest", "limit"),
    Case("bad-list-resource-version", "GET", PODS + "?resourceVersion=abc", 400, "BadRequest", "resource version"),
    Case("bad-watch-timeout", "GET", PODS + "?watch=1&timeoutSeconds=soon", 400, "BadRequest", "timeoutSeconds"),
    Case("bad-watch-flag", "GET", PODS + "?watch=maybe", 400, "BadRequest", "watch"),
    Case("bad-body-resource-version", "PUT", CMS + "/seed-cm", 400, "BadRequest", "resource version",
         json_body=with_(sample("ConfigMap", "seed-cm"), "metadata.resourceVersion", "xyz")),
    Case("strict-unknown-field", "POST", DEPLOYS + "?fieldValidation=Strict", 400, "BadRequest", "spec.bogus",
         json_body=with_(sample("Deployment", "strict"), "spec.bogus", True)),
    Case("strict-duplicate-field", "POST", CMS + "?fieldValidation=Strict", 400, "BadRequest", "duplicate",
         raw=b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup","name":"dup2"}}',
         headers={"Content-Type": "application/json"}),
    Case("bad-field-validation-value", "POST", CMS + "?fieldValidation=Loose", 400, "BadRequest",
         "fieldValidation", json_body=sample("ConfigMap", "loose")),
    Case("bad-dry-run-value", "POST", CMS + "?dryRun=Some", 400, "BadRequest", "dryRun",
         json_body=sample("ConfigMap", "dry")),
    Case("bad-propagation-policy", "DELETE", CMS + "/seed-cm?propagationPolicy=Sideways", 422, "Invalid",
         "propagationPolicy"),
    Case("negative-grace-period", "DELETE", CMS + "/seed-cm?gracePeriodSeconds=-3", 422, "Invalid",
         "gracePeriodSeconds"),
    Case("bad-delete-options-body", "DELETE", CMS + "/seed-cm", 400, "BadRequest", "DeleteOptions",
         json_body={"kind": "Pod"}),
    Case("binding-without-target", "POST", PODS + "/seed-pod/binding", 422, "Invalid", "target.name",
         json_body={"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "seed-pod"}}),
    Case("scale-non-integer", "PUT", DEPLOYS + "/seed-deploy/scale", 422, "Invalid", "spec.replicas",
         json_body={"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "seed-deploy"},
                    "spec": {"replicas": "lots"}}),
    Case("unknown-resource", "GET", "/api/v1/namespaces/default/widgets", 404, "NotFound", "widgets"),
    Case("unknown-group", "GET", "/apis/nope.example.com/v1", 404, "NotFound", "nope.example.com"),
    Case("unknown-path", "GET", "/definitely/not/here", 404, "NotFound", "/definitely/not/here"),
    Case("post-to-an-item", "POST", CMS + "/seed-cm", 405, "MethodNotAllowed", "POST", json_body={}),
    Case("put-to-a-collection", "PUT", CMS, 405, "MethodNotAllowed", "PUT", json_body={}),
    Case("accept-protobuf-only", "GET", CMS + "/seed-cm", 406, "NotAcceptable", "application/json",
         headers={"Accept": "application/vnd.kubernetes.protobuf"}),
    Case("status-put-wrong-type", "PUT", PODS + "/seed-pod/status", 422, "Invalid", "status",
         json_body=with_(pod("seed-pod"), "status", {"phase": 7})),
    # Bodies that decode but could not be stored and served back: before they were
    # refused, one nested 252 levels was stored and every later LIST of its kind was a 500.
    Case("nested-too-deep-to-list", "POST", CMS, 400, "BadRequest", "nested", raw=_cm_json("deep", _deep(252)),
         headers=JSON_CT),
    Case("nested-101-levels", "POST", CMS, 400, "BadRequest", "nested", raw=_cm_json("deep", _deep(100)),
         headers=JSON_CT),
    Case("yaml-nested-too-deep", "POST", CMS, 400, "BadRequest", "nested", raw=_cm_yaml("deep", _deep(150)),
         headers=YAML_CT),
    Case("yaml-recursive-alias", "POST", CMS, 400, "BadRequest", "nested", raw=_cm_yaml("loop", b"&a [*a]"),
         headers=YAML_CT),
    Case("yaml-integer-over-64-bits", "POST", CMS, 400, "BadRequest", "stored",
         raw=_cm_yaml("big", b"123456789012345678901234567890"), headers=YAML_CT),
    Case("yaml-nan", "POST", CMS, 400, "BadRequest", "cannot represent", raw=_cm_yaml("nan", b".nan"),
         headers=YAML_CT),
    Case("strict-integer-over-64-bits", "POST", CMS + "?fieldValidation=Strict", 400, "BadRequest", "stored",
         raw=_cm_json("big", b"123456789012345678901234567890"), headers=JSON_CT),
    Case("strict-lone-surrogate", "POST", CMS + "?fieldValidation=Strict", 400, "BadRequest", "stored",
         raw=_cm_json("surrogate", b'"\\ud800"'), headers=JSON_CT),
    Case("merge-patch-nested-too-deep", "PATCH", CMS + "/seed-cm", 400, "BadRequest", "nested",
         raw=b'{"x":' + _deep(150) + b"}", headers=MERGE),
    Case("replicas-over-int32", "POST", DEPLOYS, 422, "Invalid", "spec.replicas",
         json_body=with_(DEPLOY, "spec.replicas", 2**31), cause_field="spec.replicas"),
    Case("scale-replicas-over-int32", "PUT", DEPLOYS + "/seed-deploy/scale", 422, "Invalid", "spec.replicas",
         json_body={"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "seed-deploy"},
                    "spec": {"replicas": 2**40}}),
    # Integer parameters beyond int64 (or a bound of their own): 400, not an overflow.
    Case("limit-over-int64", "GET", PODS + "?limit=9223372036854775808", 400, "BadRequest", "limit"),
    Case("watch-resource-version-over-int64", "GET", PODS + "?watch=1&resourceVersion=" + "1" * 31, 400,
         "BadRequest", "resource version"),
    Case("watch-timeout-400-digits", "GET", PODS + "?watch=1&timeoutSeconds=" + "1" * 400, 400, "BadRequest",
         "timeoutSeconds"),
    Case("grace-period-over-int64", "DELETE", CMS + "/seed-cm?gracePeriodSeconds=99999999999999999999", 422,
         "Invalid", "gracePeriodSeconds"),
    Case("exec-timeout-over-int32", "POST", PODS + "/seed-pod/exec?command=ls&timeoutSeconds=99999999999", 400,
         "BadRequest", "timeoutSeconds"),
    Case("resource-version-with-underscore", "GET", PODS + "?resourceVersion=1_0", 400, "BadRequest",
         "resource version"),
    Case("resource-version-arabic-digit", "GET", PODS + "?resourceVersion=%D9%A1", 400, "BadRequest",
         "resource version"),
    Case("finalize-metadata-not-an-object", "PUT", f"/api/v1/namespaces/{NS}/finalize", 400, "BadRequest",
         "metadata", json_body={"metadata": "x", "spec": {}}),
]


@pytest.fixture(scope="module")
def server(shared_api_server: SharedApiServer) -> ApiServerProcess:
    """The shared server with namespace NS and the objects the cases aim at."""
    with httpx.Client(base_url=shared_api_server.url, timeout=30) as c:
        r = c.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        assert r.status_code == 201, r.text
        for path, obj in ((CMS, sample("ConfigMap", "seed-cm")), (PODS, pod("seed-pod")),
                          (DEPLOYS, sample("Deployment", "seed-deploy"))):
            assert c.post(path, json=obj).status_code == 201
    return shared_api_server


def test_at_least_forty_cases() -> None:
    assert len(CASES) >= 40 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_request(server: ApiServerProcess, case: Case) -> None:
    before = dump(server.url)
    headers = dict(case.headers)
    content: bytes | None = case.raw
    if case.json_body is not None:
        content = json.dumps(case.json_body).encode()
        headers.setdefault("Content-Type", "application/json")
    with httpx.Client(base_url=server.url, timeout=60) as c:
        r = c.request(case.method, case.path, content=content, headers=headers)
    assert r.status_code == case.code, r.text[:500]
    assert r.headers["content-type"].startswith("application/json")
    status = r.json()
    assert status["kind"] == "Status" and status["apiVersion"] == "v1" and status["status"] == "Failure"
    assert status["code"] == case.code and status["reason"] == case.reason
    assert case.needle.lower() in status["message"].lower(), status["message"]
    assert "Traceback" not in r.text
    if case.cause_field is not None:
        fields = [c.get("field") for c in status["details"]["causes"]]
        assert case.cause_field in fields, fields
    assert dump(server.url) == before


def test_chunked_body_over_the_limit_is_refused_early(server: ApiServerProcess) -> None:
    """No Content-Length: the server counts while reading and stops at the limit."""
    before = dump(server.url)
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        yield b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"chunky"},"data":{"k":"'
        for _ in range(64):  # 64 MiB if the server read it all
            sent += 1
            yield b"x" * (1024 * 1024)
        yield b'"}}'

    with httpx.Client(base_url=server.url, timeout=60) as c:
        try:
            r = c.post(CMS, content=chunks(), headers={"Content-Type": "application/json"})
        except httpx.HTTPError:
            r = None  # the server may close the connection before the upload ends
    if r is not None:
        assert r.status_code == 413 and r.json()["reason"] == "RequestEntityTooLarge"
    assert sent < 64 or r is not None
    assert dump(server.url) == before


def test_deeply_nested_object_within_the_limit_is_stored_and_listed(server: ApiServerProcess) -> None:
    """The depth limit leaves room for real objects: 60 levels are stored, and listed
    (JSON and Table, which wrap each object in more levels) like any other."""
    with httpx.Client(base_url=server.url, timeout=30) as c:
        r = c.post(CMS, content=_cm_json("nested-60", _deep(58)), headers=JSON_CT)
        assert r.status_code == 201, r.text[:300]
        try:
            listed = c.get(CMS).json()["items"]
            assert any(o["metadata"]["name"] == "nested-60" for o in listed)
            table = c.get(CMS, params={"includeObject": "Object"},
                          headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
            assert table.status_code == 200 and table.json()["kind"] == "Table", table.text[:300]
        finally:
            assert c.delete(CMS + "/nested-60").status_code == 200


def test_the_largest_limit_lists_everything(server: ApiServerProcess) -> None:
    """limit=2^63-1 is a valid int64: the page asked of SQLite must not overflow."""
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for query in ("", "&labelSelector=a!%3Db", "&fieldSelector=metadata.name!%3Dx"):
            r = c.get(f"{PODS}?limit=9223372036854775807{query}")
            assert r.status_code == 200, r.text[:300]
            assert [o["metadata"]["name"] for o in r.json()["items"]] == ["seed-pod"]
