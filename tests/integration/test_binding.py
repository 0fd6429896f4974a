"""pods/binding: a pod is bound once, and only the pod the Binding was meant for."""

from __future__ import annotations

from typing import Any

import httpx

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b1"},
       "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


def binding(uid: str | None, node: str) -> dict[str, Any]:
    md: dict[str, Any] = {"name": "b1"}
    if uid:
        md["uid"] = uid
    return {"apiVersion": "v1", "kind": "Binding", "metadata": md, "target": {"kind": "Node", "name": node}}


def test_binding_for_an_earlier_pod_of_the_same_name_is_refused(api_server: Any) -> None:
    with httpx.Client(base_url=api_server.url, timeout=30) as c:
        pods = "/api/v1/namespaces/default/pods"
        old_uid = c.post(pods, json=POD).json()["metadata"]["uid"]
        assert c.delete(f"{pods}/b1").status_code == 200  # unbound: removed at once
        new_uid = c.post(pods, json=POD).json()["metadata"]["uid"]
        r = c.post(f"{pods}/b1/binding", json=binding(old_uid, "n1"))
        assert r.status_code == 409 and r.json()["reason"] == "Conflict" and old_uid in r.json()["message"]
        assert "nodeName" not in c.get(f"{pods}/b1").json()["spec"]
        assert c.post(f"{pods}/b1/binding", json=binding(new_uid, "n1")).status_code == 201
        assert c.get(f"{pods}/b1").json()["spec"]["nodeName"] == "n1"
        r = c.post(f"{pods}/b1/binding", json=binding(None, "n2"))  # bound once only
        assert r.status_code == 409 and "already assigned" in r.json()["message"]
