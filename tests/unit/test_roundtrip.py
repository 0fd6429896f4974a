"""Unknown fields survive a trip through mkube; `unknown_fields` names them for Strict validation."""

from __future__ import annotations

from typing import Any

from mkube.api import kinds, strategy
from mkube.api.validation import unknown_fields

PODS = kinds.lookup("pods")
DEPLOYS = kinds.lookup("deployments")
assert PODS is not None and DEPLOYS is not None


def _pod_with_extras() -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "futureTopLevel": {"a": [1, 2]},
        "metadata": {"name": "p", "namespace": "default", "futureMeta": "x"},
        "spec": {
            "futureSpec": True,
            "containers": [{"name": "c", "image": "i", "futureContainer": {"nested": {"deep": 1}},
                            "ports": [{"containerPort": 80, "futurePort": "y"}],
                            "resources": {"limits": {"cpu": "1"}, "futureRes": 1}}],
            "volumes": [{"name": "v", "emptyDir": {"futureEmptyDir": 1}}],
        },
    }


def test_unknown_fields_are_kept_on_create_at_every_level() -> None:
    out = strategy.prepare_for_create(PODS, _pod_with_extras())  # type: ignore[arg-type]
    assert out["futureTopLevel"] == {"a": [1, 2]}
    assert out["metadata"]["futureMeta"] == "x"
    assert out["spec"]["futureSpec"] is True
    c = out["spec"]["containers"][0]
    assert c["futureContainer"] == {"nested": {"deep": 1}}
    assert c["ports"][0]["futurePort"] == "y"
    assert c["resources"]["futureRes"] == 1
    assert out["spec"]["volumes"][0]["emptyDir"] == {"futureEmptyDir": 1}


def test_unknown_fields_survive_update_and_status_update() -> None:
    created = strategy.prepare_for_create(PODS, _pod_with_extras())  # type: ignore[arg-type]
    created["metadata"]["uid"] = "u"
    updated = strategy.prepare_for_update(PODS, created, created)  # type: ignore[arg-type]
    assert updated == created
    with_status = strategy.prepare_for_status_update(
        PODS, {"status": {"phase": "Running", "futureStatus": {"x": 1}}}, created)  # type: ignore[arg-type]
    assert with_status["status"]["futureStatus"] == {"x": 1}
    assert with_status["spec"]["futureSpec"] is True


def test_roundtrip_is_idempotent() -> None:
    once = strategy.prepare_for_create(PODS, _pod_with_extras())  # type: ignore[arg-type]
    twice = strategy.prepare_for_create(PODS, once)  # type: ignore[arg-type]
    assert once == twice


def test_known_kubernetes_fields_the_models_lack_are_kept() -> None:
    body = _pod_with_extras()
    body["spec"].update(hostPID=True, readinessGates=[{"conditionType": "x/y"}],
                        topologySpreadConstraints=[{"maxSkew": 1, "topologyKey": "zone",
                                                    "whenUnsatisfiable": "DoNotSchedule"}])
    body["spec"]["containers"][0]["livenessProbe"] = {"grpc": {"port": 9000}}
    out = strategy.prepare_for_create(PODS, body)  # type: ignore[arg-type]
    assert out["spec"]["hostPID"] is True
    assert out["spec"]["readinessGates"] == [{"conditionType": "x/y"}]
    assert out["spec"]["containers"][0]["livenessProbe"]["grpc"] == {"port": 9000}


def test_unknown_fields_paths() -> None:
    body = _pod_with_extras()
    body["spec"]["hostPID"] = True  # a real Kubernetes field: not unknown
    body["spec"]["containers"][0]["volumeDevices"] = []  # real too
    assert unknown_fields(PODS, body) == [  # type: ignore[arg-type]
        "futureTopLevel",
        "metadata.futureMeta",
        "spec.futureSpec",
        "spec.containers[0].futureContainer",
        "spec.containers[0].ports[0].futurePort",
        "spec.containers[0].resources.futureRes",
        "spec.volumes[0].emptyDir.futureEmptyDir",
    ]


def test_unknown_fields_in_templates_and_clean_bodies() -> None:
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"selector": {"matchLabels": {"a": "b"}, "matchLabelz": {}},
                     "template": {"metadata": {"labels": {"a": "b"}},
                                  "spec": {"containers": [{"name": "c", "image": "i", "imagePullPolicyy": "x"}]}}}}
    assert unknown_fields(DEPLOYS, body) == [  # type: ignore[arg-type]
        "spec.selector.matchLabelz", "spec.template.spec.containers[0].imagePullPolicyy"]
    clean = strategy.prepare_for_create(DEPLOYS, {  # type: ignore[arg-type]
        "metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"a": "b"}},
                                            "template": {"metadata": {"labels": {"a": "b"}},
                                                         "spec": {"containers": [{"name": "c", "image": "i"}]}}}})
    assert unknown_fields(DEPLOYS, clean) == []  # type: ignore[arg-type]
    assert unknown_fields(DEPLOYS, {"spec": {"replicas": "abc"}}) == []  # type: ignore[arg-type]


def test_field_aliases_roundtrip() -> None:
    svc = kinds.lookup("services")
    assert svc is not None
    out = strategy.prepare_for_create(svc, {"metadata": {"name": "s"}, "spec": {
        "clusterIP": "10.96.0.5", "ports": [{"port": 80}], "externalIPs": ["1.2.3.4"]}})
    assert out["spec"]["clusterIP"] == "10.96.0.5"
    assert out["spec"]["clusterIPs"] == ["10.96.0.5"]
    assert out["spec"]["externalIPs"] == ["1.2.3.4"]
    assert unknown_fields(svc, out) == []
