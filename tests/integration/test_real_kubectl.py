"""The real `kubectl` (v1.32, unmodified) against a real mkube API server: the session's
shared one, each test in its own fresh namespace (`kubectl` passes `--namespace`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

MANIFEST = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Pod
metadata:
  name: solo
  labels: {app: solo}
spec:
  containers:
  - name: c
    image: busybox:1.36
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 80
"""


@pytest.fixture
def kubectl(shared_api_server: Any, namespace: str, tmp_path: Path) -> Any:
    """kubectl(*args) in the test's namespace (a later `-n` in args wins)."""
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.fail("kubectl is not on PATH (the API-compatibility tests need the real kubectl 1.32)")
    env = dict(os.environ, KUBECONFIG=os.devnull, HOME=str(tmp_path))  # no user config, private cache

    def run(*args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([binary, "--server", shared_api_server.url, "--namespace", namespace, *args],
                              capture_output=True, text=True, env=env, input=input, timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    return run


def test_get_namespaces_table(kubectl: Any) -> None:
    out = kubectl("get", "ns").stdout.splitlines()
    assert out[0].split() == ["NAME", "STATUS", "AGE"]
    assert {line.split()[0] for line in out[1:]} >= {"default", "kube-system", "kube-public", "kube-node-lease"}


def test_create_from_file_get_yaml_apply_delete(kubectl: Any, tmp_path: Path) -> None:
    manifest = tmp_path / "app.yaml"
    manifest.write_text(MANIFEST)
    out = kubectl("create", "-f", str(manifest)).stdout  # --validate=strict: server-side validation
    assert "deployment.apps/web created" in out and "pod/solo created" in out and "service/web created" in out
    pods = yaml.safe_load(kubectl("get", "pods", "-o", "yaml").stdout)
    assert [p["metadata"]["name"] for p in pods["items"]] == ["solo"]
    assert pods["items"][0]["status"]["phase"] == "Pending"
    table = kubectl("get", "deploy", "web").stdout.splitlines()
    assert table[0].split()[:2] == ["NAME", "READY"] and table[1].split()[0] == "web"
    kubectl("scale", "deploy", "web", "--replicas=4")
    kubectl("label", "pod", "solo", "tier=x")
    kubectl("annotate", "pod", "solo", "note=hi")
    kubectl("patch", "deploy", "web", "-p", '{"spec":{"template":{"spec":{"containers":[{"name":"web",'
                                            '"image":"nginx:1.28"}]}}}}')
    deploy = json.loads(kubectl("get", "deploy", "web", "-o", "json").stdout)
    assert deploy["spec"]["replicas"] == 4 and deploy["metadata"]["generation"] == 3
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"
    assert kubectl("get", "pods", "-l", "tier in (x)", "-o", "name").stdout.split() == ["pod/solo"]
    # client-side apply (three-way strategic merge patch)
    applied = kubectl("apply", "-f", str(manifest))
    assert "deployment.apps/web configured" in applied.stdout
    assert json.loads(kubectl("get", "deploy", "web", "-o", "json").stdout)["spec"]["replicas"] == 2
    kubectl("delete", "-f", str(manifest))
    assert kubectl("get", "pods", "-o", "name").stdout.strip() == ""
    bad = kubectl("create", "-f", "-", check=False, input=MANIFEST.replace("replicas: 2", "replicas: -2"))
    assert bad.returncode != 0 and "spec.replicas" in bad.stderr


def test_create_commands_send_protobuf(kubectl: Any, namespace: str) -> None:
    """`kubectl create <kind>` uses typed clients, which send protobuf bodies."""
    proto = f"{namespace}-proto"
    kubectl("create", "namespace", proto)
    kubectl("create", "configmap", "cm", "-n", proto, "--from-literal=a=b", "--from-literal=c=d")
    kubectl("create", "secret", "generic", "sec", "-n", proto, "--from-literal=pw=hunter2")
    kubectl("create", "deployment", "dep", "-n", proto, "--image=nginx", "--port=80", "--replicas=3")
    kubectl("create", "deployment", "zero", "-n", proto, "--image=nginx", "--replicas=0")
    kubectl("create", "service", "clusterip", "svc", "-n", proto, "--tcp=80:8080")

    def get(*args: str) -> Any:
        return json.loads(kubectl("get", *args, "-n", proto, "-o", "json").stdout)

    assert get("cm", "cm")["data"] == {"a": "b", "c": "d"}
    assert get("secret", "sec")["data"] == {"pw": "aHVudGVyMg=="}
    dep = get("deploy", "dep")
    assert dep["metadata"]["labels"] == {"app": "dep"} and dep["spec"]["replicas"] == 3
    assert dep["spec"]["selector"] == {"matchLabels": {"app": "dep"}}
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert (container["name"], container["image"], container["ports"][0]["containerPort"]) == ("nginx", "nginx", 80)
    assert get("deploy", "zero")["spec"]["replicas"] == 0
    port = get("svc", "svc")["spec"]["ports"][0]
    assert (port["name"], port["port"], port["targetPort"]) == ("80-8080", 80, 8080)
    ns = json.loads(kubectl("get", "ns", proto, "-o", "json").stdout)
    assert ns["status"]["phase"] == "Active"


def test_watch_and_namespace_delete(kubectl: Any, shared_api_server: Any, namespace: str) -> None:
    gone = f"{namespace}-gone"
    kubectl("create", "namespace", gone)
    kubectl("run", "p", "-n", gone, "--image=busybox")
    binary = shutil.which("kubectl")
    assert binary is not None
    watcher = subprocess.Popen([binary, "--server", shared_api_server.url, "get", "pods", "-n", gone, "-w",
                                "--request-timeout=8s"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, KUBECONFIG=os.devnull))
    try:
        time.sleep(1.5)
        kubectl("label", "pod", "p", "-n", gone, "x=1")
        kubectl("delete", "ns", gone, "--wait=false")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if httpx.get(f"{shared_api_server.url}/api/v1/namespaces/{gone}").status_code == 404:
                break
            time.sleep(0.1)
        assert httpx.get(f"{shared_api_server.url}/api/v1/namespaces/{gone}").status_code == 404
    finally:
        watcher.terminate()
        out, _ = watcher.communicate(timeout=10)
    lines = [line.split() for line in out.splitlines()]
    assert lines[0][:2] == ["NAME", "READY"] and len(lines) >= 3 and all(line[0] == "p" for line in lines[1:])
