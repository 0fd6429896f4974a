"""Secure by default: a real `mkube server` process (HTTPS, bearer tokens) on a temp
data dir, used by the admin (mkubectl, kubectl, the official Python client with the
written kubeconfig) and by nodes that joined with the join token."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import kubernetes
import pytest
from cryptography import x509

from mkube.api.errors import ApiError
from mkube.api.jointoken import parse_join_token
from mkube.apiserver import pki
from mkube.client import Client, bootstrap
from tests.fixtures.apiserver import REPO, ApiServerProcess, free_port

OPEN = ("/healthz", "/livez", "/readyz", "/version")
CLOSED = ("/api", "/api/v1", "/apis", "/apis/apps/v1", "/api/v1/pods", "/api/v1/namespaces/default/configmaps",
          "/apis/apps/v1/deployments", "/openapi/v3", "/metrics")


@dataclass
class Server:
    url: str
    data_dir: Path
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig.yaml"

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "tls" / "ca.crt"

    @property
    def admin_token(self) -> str:
        return (self.data_dir / "tokens" / "admin").read_text().strip()

    @property
    def join_token(self) -> str:
        return (self.data_dir / "node-token").read_text().strip()

    def client(self, token: str | None) -> Client:
        return Client(self.url, token=token, ca_file=str(self.ca_file))


def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("secure") / "data"
    port = free_port()
    log = data_dir.parent / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mkube.cli", "server", "--data-dir", str(data_dir),
                                 "--port", str(port)], cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                env=dict(os.environ, PYTHONUNBUFFERED="1"))
    srv = Server(f"https://127.0.0.1:{port}", data_dir, proc, log)
    try:
        def ready() -> bool:
            assert proc.poll() is None, log.read_text()
            return srv.kubeconfig.exists() and "API server ready" in log.read_text()

        _wait(ready, 90, "mkube server")
        yield srv
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="module")
def admin(server: Server) -> Iterator[Client]:
    client = server.client(server.admin_token)
    yield client
    client.close()


# ---------------------------------------------------------------- authentication

def test_server_prints_how_to_join(server: Server) -> None:
    text = server.log.read_text()
    assert f"node join token ({server.data_dir / 'node-token'}): {server.join_token}" in text
    assert "mkube agent --server https://" in text


def test_health_and_version_are_open_everything_else_needs_a_token(server: Server) -> None:
    verify = ssl.create_default_context(cafile=str(server.ca_file))
    with httpx.Client(base_url=server.url, verify=verify) as http:
        for path in OPEN:
            assert http.get(path).status_code == 200, path
        assert http.get("/cacerts").content == server.ca_file.read_bytes()
        for path in CLOSED:
            for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic YTpi"},
                            {"Authorization": f"Bearer {server.join_token}"}):
                r = http.get(path, headers=headers)
                assert r.status_code == 401, (path, headers, r.text)
                assert r.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                    "message": "Unauthorized", "reason": "Unauthorized", "code": 401}
        r = http.post("/api/v1/namespaces/default/configmaps", json={"metadata": {"name": "x"}})
        assert r.status_code == 401
        auth = {"Authorization": f"Bearer {server.admin_token}"}
        for path in CLOSED:
            assert http.get(path, headers=auth).status_code == 200, path


def test_plain_http_and_untrusted_tls_are_refused(server: Server) -> None:
    with pytest.raises(httpx.HTTPError):
        httpx.get(server.url.replace("https://", "http://") + "/version", timeout=5)
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(server.url + "/version", timeout=5)  # the system CAs do not know the cluster CA


def test_secrets_on_disk_are_owner_only(server: Server) -> None:
    def mode(p: Path) -> int:
        return stat.S_IMODE(p.stat().st_mode)

    for path in ("tls/ca.key", "tls/apiserver.key", "tokens/admin", "tokens/node-join", "tokens/kubelet-key",
                 "tokens/nodes.json", "node-token", "kubeconfig.yaml"):
        if path == "tokens/nodes.json" and not (server.data_dir / path).exists():
            continue
        assert mode(server.data_dir / path) == 0o600, path
    for d in ("", "tls", "tokens"):
        assert mode(server.data_dir / d) == 0o700, d
    token = parse_join_token(server.join_token)
    assert token.ca_hash == bootstrap.ca_hash(server.ca_file.read_bytes())
    cert = x509.load_pem_x509_certificate((server.data_dir / "tls" / "apiserver.crt").read_bytes())
    sans = pki.cert_sans(cert)
    assert {"127.0.0.1", "localhost", "kubernetes.default.svc", "10.96.0.1", socket.gethostname().lower()} <= sans


# ---------------------------------------------------------------- the admin's clients

def test_official_python_client_with_the_written_kubeconfig(server: Server) -> None:
    api = kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config(config_file=str(server.kubeconfig)))
    names = [ns.metadata.name for ns in api.list_namespace().items]
    assert "default" in names and "kube-node-lease" in names
    cm = kubernetes.client.V1ConfigMap(metadata=kubernetes.client.V1ObjectMeta(name="py-sec"), data={"a": "1"})
    assert api.create_namespaced_config_map("default", cm).data == {"a": "1"}

    config = kubernetes.client.Configuration()
    config.host = server.url
    config.ssl_ca_cert = str(server.ca_file)
    config.api_key = {"authorization": "Bearer wrong"}
    with kubernetes.client.ApiClient(config) as bad, pytest.raises(kubernetes.client.ApiException) as exc:
        kubernetes.client.CoreV1Api(bad).list_namespace()
    assert exc.value.status == 401


def _kubectl(server: Server, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HOME=str(tmp), KUBECONFIG=str(server.kubeconfig))
    return subprocess.run(["kubectl", "--cache-dir", str(tmp / "cache"), *args], env=env, capture_output=True,
                          text=True, timeout=60)


def test_real_kubectl_with_the_written_kubeconfig(server: Server, tmp_path: Path) -> None:
    r = _kubectl(server, tmp_path, "get", "namespaces", "-o", "name")
    assert r.returncode == 0, r.stderr
    assert "namespace/default" in r.stdout.split()
    r = _kubectl(server, tmp_path, "create", "configmap", "kubectl-sec", "--from-literal=k=v")
    assert r.returncode == 0, r.stderr
    r = _kubectl(server, tmp_path, "get", "configmap", "kubectl-sec", "-o", "jsonpath={.data.k}")
    assert (r.returncode, r.stdout) == (0, "v"), r.stderr
    r = _kubectl(server, tmp_path, "--token", "wrong", "get", "pods")
    assert r.returncode != 0 and "Unauthorized" in r.stderr + r.stdout


def test_mkubectl_with_the_written_kubeconfig(server: Server) -> None:
    env = dict(os.environ, KUBECONFIG=str(server.kubeconfig))
    r = subprocess.run([sys.executable, "-m", "mkube.kubectl.main", "get", "namespaces"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "default" in r.stdout and "kube-node-lease" in r.stdout


# ---------------------------------------------------------------- nodes

def _join(server: Server, node: str, password: str = "p" * 32,
          token: str | None = None) -> bootstrap.Credentials:
    join_token = parse_join_token(token or server.join_token)
    assert join_token.ca_hash is not None
    ca = bootstrap.fetch_ca(server.url, join_token.ca_hash)
    assert ca == server.ca_file.read_bytes()
    return bootstrap.join(server.url, str(server.ca_file), join_token, node, password)


def _pod(name: str, node: str) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}}


def _forbidden(fn: Callable[[], object]) -> str:
    with pytest.raises(ApiError) as exc:
        fn()
    assert exc.value.code == 403 and exc.value.reason == "Forbidden", exc.value
    return exc.value.message


def test_node_tokens_are_limited_to_what_a_node_may_do(server: Server, admin: Client) -> None:
    c1, c2 = _join(server, "sec-n1"), _join(server, "sec-n2", "q" * 32)
    n1, n2 = server.client(c1.token), server.client(c2.token)
    try:
        admin.create_raw("deployments", {
            "metadata": {"name": "web"},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}, "default")
        admin.create_raw("pods", _pod("on-n1", "sec-n1"), "default")
        admin.create_raw("pods", _pod("on-n2", "sec-n2"), "default")

        # its own Node and Lease
        assert n1.create_raw("nodes", {"metadata": {"name": "sec-n1"}})["metadata"]["name"] == "sec-n1"
        assert n2.create_raw("nodes", {"metadata": {"name": "sec-n2"}})["metadata"]["name"] == "sec-n2"
        msg = _forbidden(lambda: n1.create_raw("nodes", {"metadata": {"name": "sec-n3"}}))
        assert msg.startswith('nodes "sec-n3" is forbidden: User "system:node:sec-n1" cannot create resource "nodes"')
        n1.patch_raw("nodes", "sec-n1", {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
                     subresource="status")
        n1.patch_raw("nodes", "sec-n1", {"metadata": {"labels": {"role": "worker"}}})
        msg = _forbidden(lambda: n1.patch_raw("nodes", "sec-n2", {"status": {"phase": "x"}}, subresource="status"))
        assert msg == ('nodes "sec-n2" is forbidden: User "system:node:sec-n1" cannot patch resource "nodes/status" '
                       'in API group "" at the cluster scope: node "sec-n1" may not patch nodes/status of another '
                       'node')
        lease = {"metadata": {"name": "sec-n1"}, "spec": {"holderIdentity": "sec-n1"}}
        n1.create_raw("leases", lease, "kube-node-lease")
        _forbidden(lambda: n1.create_raw("leases", {"metadata": {"name": "sec-n2"}}, "kube-node-lease"))

        # pods: read all, write the status of its own, delete its own
        assert {p["metadata"]["name"] for p in n1.list_raw("pods", "default")["items"]} >= {"on-n1", "on-n2"}
        out = n1.patch_raw("pods", "on-n1", {"status": {"phase": "Running"}}, "default", subresource="status")
        assert out["status"]["phase"] == "Running"
        msg = _forbidden(lambda: n1.patch_raw("pods", "on-n2", {"status": {"phase": "Failed"}}, "default",
                                              subresource="status"))
        assert msg == ('pods "on-n2" is forbidden: User "system:node:sec-n1" cannot patch resource "pods/status" in '
                       'API group "" in the namespace "default": pod is bound to node \'sec-n2\', not to node '
                       '"sec-n1"')
        assert admin.get_raw("pods", "on-n2", "default").get("status", {}).get("phase") != "Failed"
        pod = n2.get_raw("pods", "on-n2", "default")
        pod["status"] = {"phase": "Running"}
        assert n2.update_raw("pods", pod, "default", subresource="status")["status"]["phase"] == "Running"
        _forbidden(lambda: n1.create_raw("pods", _pod("sneaky", "sec-n1"), "default"))
        _forbidden(lambda: n1.patch_raw("pods", "on-n1", {"metadata": {"labels": {"a": "b"}}}, "default"))
        _forbidden(lambda: n1.delete_raw("pods", "on-n2", "default"))
        n1.delete_raw("pods", "on-n1", "default", grace_period_seconds=0)

        # nothing else
        msg = _forbidden(lambda: n1.delete_raw("deployments", "web", "default"))
        assert msg == ('deployments.apps "web" is forbidden: User "system:node:sec-n1" cannot delete resource '
                       '"deployments" in API group "apps" in the namespace "default"')
        assert admin.get_raw("deployments", "web", "default")["metadata"]["name"] == "web"
        _forbidden(lambda: n1.create_raw("services", {"metadata": {"name": "s"},
                                                       "spec": {"ports": [{"port": 80}]}}, "default"))
        _forbidden(lambda: n1.create_raw("configmaps", {"metadata": {"name": "c"}}, "default"))
        n1.create_raw("events", {"metadata": {"name": "e1"}, "involvedObject": {"kind": "Node", "name": "sec-n1"},
                                 "reason": "Test", "message": "hello"}, "default")
        assert n1.get_raw("namespaces", "default")["metadata"]["name"] == "default"
        r = httpx.get(server.url + "/metrics", headers={"Authorization": f"Bearer {c1.token}"},
                      verify=ssl.create_default_context(cafile=str(server.ca_file)))
        assert r.status_code == 403
    finally:
        n1.close()
        n2.close()


def test_join_checks_the_secret_the_ca_and_the_node_password(server: Server, tmp_path: Path) -> None:
    _join(server, "sec-j1", "a" * 32)
    admin = server.client(server.admin_token)
    try:
        admin.create_raw("nodes", {"metadata": {"name": "sec-j1"}})
    finally:
        admin.close()
    with pytest.raises(bootstrap.JoinError, match="different node password"):
        _join(server, "sec-j1", "b" * 32)  # another machine with the join token may not take the name
    _join(server, "sec-j1", "a" * 32)  # the same machine re-joins
    wrong_secret = str(parse_join_token(server.join_token)).rsplit(":", 1)[0] + ":" + "f" * 64
    with pytest.raises(bootstrap.JoinError, match="refused the join token"):
        _join(server, "sec-j2", token=wrong_secret)
    with pytest.raises(bootstrap.JoinError, match="does not match the join token"):
        bootstrap.fetch_ca(server.url, "0" * 64)


def _agent(server: Server, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mkube.cli", "agent", "--server", server.url, "--data-dir",
                           str(tmp / "agent-data"), "--node-name", "sec-agent", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def test_agent_refuses_a_server_whose_ca_does_not_match_the_token(server: Server, tmp_path: Path) -> None:
    secret = parse_join_token(server.join_token).secret
    r = _agent(server, tmp_path, "--token", f"K10{'ab' * 32}::node:{secret}")
    assert r.returncode != 0
    assert "does not match the join token" in r.stderr and "Refusing to trust it" in r.stderr, r.stderr
    assert not (tmp_path / "agent-data" / "agent" / "credentials.json").exists()
    r = _agent(server, tmp_path, "--token", secret)  # no hash and no --ca-file: nothing to trust
    assert r.returncode != 0 and "no CA hash" in r.stderr, r.stderr
    other_ca = tmp_path / "other-ca.crt"
    other_ca.write_bytes(pki._cert_pem(pki.make_ca()[0]))
    r = _agent(server, tmp_path, "--token", server.join_token, "--ca-file", str(other_ca))
    assert r.returncode != 0 and "does not match the join token" in r.stderr, r.stderr
    r = _agent(server, tmp_path)
    assert r.returncode != 0 and "--token is required" in r.stderr, r.stderr


def test_a_kubelet_with_node_credentials_runs_pods_and_guards_its_port(server: Server, admin: Client,
                                                                        tmp_path: Path) -> None:
    """The real kubelet (fake runtime) with a per-node token: registration, lease, pod
    status all pass the node rules; its port answers the API server only."""
    from mkube.kubelet.auth import bearer_token_authenticator
    from mkube.kubelet.main import run as run_kubelet

    creds = _join(server, "sec-k1", "k" * 32)
    stop = threading.Event()
    failures: list[BaseException] = []

    def kubelet() -> None:
        try:
            run_kubelet(server.url, "sec-k1", creds.token, stop=stop, ca_file=str(server.ca_file),
                        authenticate=bearer_token_authenticator(creds.kubelet_token), runtime="fake",
                        node_ip="127.0.0.1", port=0, root_dir=str(tmp_path / "kubelet"),
                        node_status_update_frequency=1.0, lease_renew_interval=1.0)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            failures.append(e)

    thread = threading.Thread(target=kubelet, daemon=True)
    thread.start()
    try:
        def node_ready() -> bool:
            assert not failures, failures
            try:
                node = admin.get_raw("nodes", "sec-k1")
            except ApiError:
                return False
            conds = (node.get("status") or {}).get("conditions") or []
            return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)

        _wait(node_ready, 60, "node sec-k1 Ready")
        admin.create_raw("pods", _pod("k1-pod", "sec-k1"), "default")

        def running() -> bool:
            return (admin.get_raw("pods", "k1-pod", "default").get("status") or {}).get("phase") == "Running"

        _wait(running, 60, "pod k1-pod Running (status written by the kubelet with its node token)")
        assert admin.get_raw("leases", "sec-k1", "kube-node-lease")["spec"]["holderIdentity"] == "sec-k1"
        # the API server presents the node's kubelet token when it proxies logs
        assert isinstance(admin.log("default", "k1-pod"), str)
        node = admin.get_raw("nodes", "sec-k1")
        port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        kubelet_url = f"http://127.0.0.1:{port}"
        assert httpx.get(kubelet_url + "/healthz").status_code == 200
        for headers in ({}, {"Authorization": f"Bearer {creds.token}"},
                        {"Authorization": f"Bearer {_join(server, 'sec-k2', 'z' * 32).kubelet_token}"}):
            r = httpx.get(kubelet_url + "/pods", headers=headers)
            assert r.status_code == 401 and r.json()["reason"] == "Unauthorized", headers
            r = httpx.get(kubelet_url + "/containerLogs/default/k1-pod/c", headers=headers)
            assert r.status_code == 401
        r = httpx.get(kubelet_url + "/pods", headers={"Authorization": f"Bearer {creds.kubelet_token}"})
        assert r.status_code == 200 and [p["metadata"]["name"] for p in r.json()["items"]] == ["k1-pod"]
    finally:
        stop.set()
        thread.join(20)
        admin.delete_raw("pods", "k1-pod", "default", grace_period_seconds=0)


# ---------------------------------------------------------------- restarts

def test_restart_reuses_the_ca_and_tokens_and_renews_the_cert_for_new_sans(tmp_path: Path) -> None:
    srv = ApiServerProcess(tmp_path / "data", secure=True)
    try:
        srv.start()
        ca, admin_token = srv.ca_file.read_bytes(), srv.admin_token
        join_token = (srv.data_dir / "node-token").read_text()
        cert = (srv.data_dir / "tls" / "apiserver.crt").read_bytes()
        srv.stop()
        srv.start()
        assert srv.ca_file.read_bytes() == ca and srv.admin_token == admin_token
        assert (srv.data_dir / "node-token").read_text() == join_token
        assert (srv.data_dir / "tls" / "apiserver.crt").read_bytes() == cert
        srv.stop()
        srv.extra_args = ["--tls-san", "api.mkube.test", "--tls-san", "192.0.2.77"]
        srv.start()
        assert srv.ca_file.read_bytes() == ca
        served = ssl.get_server_certificate(("127.0.0.1", srv.port)).encode()
        assert {"api.mkube.test", "192.0.2.77"} <= pki.cert_sans(x509.load_pem_x509_certificate(served))
        with Client(srv.url, token=admin_token, ca_file=str(srv.ca_file)) as client:
            assert client.get_raw("namespaces", "default")["metadata"]["name"] == "default"
        with Client(srv.url, token="nope", ca_file=str(srv.ca_file)) as client, pytest.raises(ApiError) as exc:
            client.get_raw("namespaces", "default")
        assert exc.value.code == 401
    finally:
        srv.kill()


def test_insecure_http_says_so_loudly(tmp_path: Path) -> None:
    srv = ApiServerProcess(tmp_path / "data")  # the fixture's default: --insecure-http
    try:
        srv.start()
        assert srv.url.startswith("http://")
        assert httpx.get(srv.url + "/api/v1/namespaces").status_code == 200
        assert (f"WARNING: mkube: --insecure-http: anyone who can reach port {srv.port} controls this cluster"
                in srv.log_path.read_text())
        assert not (srv.data_dir / "tokens").exists() and not (srv.data_dir / "tls").exists()
    finally:
        srv.kill()
