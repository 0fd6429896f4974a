"""Security pieces without a server: authorization rules, join tokens and CA hashes,
token files, certificates, the kubelet's bearer check, the agent's CA check."""

from __future__ import annotations

import ipaddress
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509

from mkube.api.errors import ApiError
from mkube.api.jointoken import JoinTokenError, ca_hash, format_join_token, parse_join_token
from mkube.apiserver import pki
from mkube.apiserver.auth import ADMIN, Authenticator, User, bearer, node_user
from mkube.apiserver.authz import BODY_NAME_IS_NODE, POD_ON_NODE, Attributes, authorize, forbidden_message
from mkube.client import bootstrap
from mkube.kubelet.auth import bearer_token_authenticator
from mkube.kubelet.server import Request

N1 = node_user("n1")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---------------------------------------------------------------- authorization

def a(verb: str, resource: str, name: str | None = None, namespace: str | None = "default", group: str = "",
      sub: str = "") -> Attributes:
    return Attributes(verb=verb, group=group, resource=resource, subresource=sub, namespace=namespace, name=name)


ALLOWED_FOR_NODE = [
    (a("list", "pods", namespace=None), None),
    (a("watch", "pods", namespace=None), None),
    (a("get", "pods", "web-1"), None),
    (a("list", "services", namespace=None), None),
    (a("watch", "endpoints", namespace=None), None),
    (a("get", "configmaps", "cfg"), None),
    (a("get", "secrets", "tls"), None),
    (a("get", "namespaces", "default", namespace=None), None),
    (a("list", "nodes", namespace=None), None),
    (a("get", "nodes", "n2", namespace=None), None),  # reading other nodes is fine (the proxy needs it)
    (a("create", "nodes", namespace=None), BODY_NAME_IS_NODE),
    (a("patch", "nodes", "n1", namespace=None), None),
    (a("update", "nodes", "n1", namespace=None, sub="status"), None),
    (a("patch", "nodes", "n1", namespace=None, sub="status"), None),
    (a("get", "leases", "n1", namespace="kube-node-lease", group="coordination.k8s.io"), None),
    (a("create", "leases", namespace="kube-node-lease", group="coordination.k8s.io"), BODY_NAME_IS_NODE),
    (a("update", "leases", "n1", namespace="kube-node-lease", group="coordination.k8s.io"), None),
    (a("update", "pods", "web-1", sub="status"), POD_ON_NODE),
    (a("patch", "pods", "web-1", sub="status"), POD_ON_NODE),
    (a("delete", "pods", "web-1"), POD_ON_NODE),
    (a("create", "events"), None),
    (a("patch", "events", "web-1.17a"), None),
]

DENIED_FOR_NODE = [
    a("delete", "deployments", "web", group="apps"),
    a("update", "deployments", "web", group="apps"),
    a("list", "deployments", group="apps"),
    a("create", "pods"),
    a("update", "pods", "web-1"),  # the spec: only the status subresource
    a("patch", "pods", "web-1"),
    a("deletecollection", "pods"),
    a("create", "pods", "web-1", sub="binding"),
    a("get", "pods", "web-1", sub="log"),
    a("create", "pods", "web-1", sub="exec"),
    a("patch", "nodes", "n2", namespace=None),
    a("update", "nodes", "n2", namespace=None, sub="status"),
    a("delete", "nodes", "n2", namespace=None),
    a("update", "leases", "n2", namespace="kube-node-lease", group="coordination.k8s.io"),
    a("create", "leases", namespace="default", group="coordination.k8s.io"),
    a("get", "leases", "n1", namespace="default", group="coordination.k8s.io"),
    a("create", "services"),
    a("delete", "services", "web"),
    a("create", "secrets"),
    a("update", "configmaps", "cfg"),
    a("delete", "namespaces", "default", namespace=None),
]


@pytest.mark.parametrize(("attrs", "condition"), ALLOWED_FOR_NODE)
def test_node_may(attrs: Attributes, condition: str | None) -> None:
    decision = authorize(N1, attrs)
    assert decision.allowed and decision.condition == condition


@pytest.mark.parametrize("attrs", DENIED_FOR_NODE)
def test_node_may_not(attrs: Attributes) -> None:
    decision = authorize(N1, attrs)
    assert not decision.allowed
    if attrs.resource in ("nodes", "leases") and attrs.name == "n2":
        resource = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
        assert decision.reason == f'node "n1" may not {attrs.verb} {resource} of another node'
    else:
        assert decision.reason == ""


@pytest.mark.parametrize("attrs", [attrs for attrs, _ in ALLOWED_FOR_NODE] + DENIED_FOR_NODE)
def test_admin_may_do_everything(attrs: Attributes) -> None:
    decision = authorize(ADMIN, attrs)
    assert decision.allowed and decision.condition is None


def test_a_user_that_is_neither_admin_nor_node_gets_nothing() -> None:
    assert not authorize(User("someone"), a("get", "pods", "x")).allowed


def test_forbidden_message_is_worded_like_kubernetes() -> None:
    attrs = a("delete", "deployments", "web", group="apps")
    assert forbidden_message(N1, attrs) == (
        'deployments.apps "web" is forbidden: User "system:node:n1" cannot delete resource "deployments" in API '
        'group "apps" in the namespace "default"')
    attrs = a("patch", "nodes", "n2", namespace=None, sub="status")
    assert forbidden_message(N1, attrs, authorize(N1, attrs).reason) == (
        'nodes "n2" is forbidden: User "system:node:n1" cannot patch resource "nodes/status" in API group "" at '
        'the cluster scope: node "n1" may not patch nodes/status of another node')
    assert forbidden_message(N1, a("list", "deployments", group="apps")).startswith(
        'deployments.apps is forbidden: User "system:node:n1" cannot list')


# ---------------------------------------------------------------- join tokens

def test_join_token_round_trip_and_forms() -> None:
    h = ca_hash(b"-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n")
    secret = "0123456789abcdef0123456789abcdef"
    token = format_join_token(h, secret)
    assert token == f"K10{h}::node:{secret}"
    parsed = parse_join_token(token + "\n")
    assert parsed.ca_hash == h and parsed.secret == secret and str(parsed) == token
    assert parse_join_token(secret).ca_hash is None
    assert parse_join_token(f"node:{secret}").secret == secret
    assert parse_join_token(f"K10{h.upper()}::node:{secret}").ca_hash == h


@pytest.mark.parametrize(("token", "words"), [
    ("", "empty"),
    ("K10abc::node:0123456789abcdef0123", "64 hex digits"),
    ("K10" + "0" * 64 + "::server:0123456789abcdef0123", "user 'server'"),
    ("K10" + "0" * 64 + "::node:short", "malformed"),
    ("secret with spaces in it", "malformed"),
])
def test_bad_join_tokens_say_what_is_wrong(token: str, words: str) -> None:
    with pytest.raises(JoinTokenError, match=words):
        parse_join_token(token)


def test_ca_hash_is_sha256_of_the_pem_bytes() -> None:
    assert ca_hash(b"x") == "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"


def test_agent_refuses_a_ca_whose_hash_does_not_match() -> None:
    with pytest.raises(bootstrap.JoinError, match="does not match the join token") as exc:
        bootstrap.check_ca(b"a CA", "0" * 64, "https://10.0.0.1:6443")
    assert not exc.value.retryable
    bootstrap.check_ca(b"a CA", ca_hash(b"a CA"), "https://10.0.0.1:6443")


def test_agent_state_round_trip(tmp_path: Path) -> None:
    state = bootstrap.AgentState(tmp_path / "agent")
    password = state.node_password()
    assert len(password) >= 32 and state.node_password() == password
    assert state.load("https://s:6443", "n1") is None
    state.save_ca(b"pem")
    state.save("https://s:6443/", bootstrap.Credentials("n1", "tok", "ktok"))
    assert state.load("https://s:6443", "n1") == bootstrap.Credentials("n1", "tok", "ktok")
    assert state.load("https://other:6443", "n1") is None and state.load("https://s:6443", "n2") is None
    for f in ("node-password", "server-ca.crt", "credentials.json"):
        assert _mode(tmp_path / "agent" / f) == 0o600


# ---------------------------------------------------------------- tokens

def test_bearer_header_parsing() -> None:
    assert bearer("Bearer abc") == "abc" and bearer("bearer  abc ") == "abc"
    assert bearer(None) is None and bearer("Basic abc") is None and bearer("Bearer ") is None


def test_tokens_are_made_once_0600_and_authenticate(tmp_path: Path) -> None:
    auth = Authenticator.load(tmp_path / "tokens")
    assert _mode(tmp_path / "tokens") == 0o700
    for name in ("admin", "node-join", "kubelet-key"):
        assert _mode(tmp_path / "tokens" / name) == 0o600
    assert len(auth.admin_token) >= 32
    again = Authenticator.load(tmp_path / "tokens")
    assert again.admin_token == auth.admin_token and again.join_secret == auth.join_secret
    assert auth.authenticate(f"Bearer {auth.admin_token}") == ADMIN
    assert auth.authenticate(None) is None
    assert auth.authenticate("Bearer nope") is None
    assert auth.authenticate(f"Bearer {auth.join_secret}") is None  # the join token only joins


def test_join_issues_per_node_tokens_and_guards_node_names(tmp_path: Path) -> None:
    auth = Authenticator.load(tmp_path / "tokens")
    password = "p" * 32
    creds = auth.join("n1", password, node_exists=False)
    assert auth.authenticate(f"Bearer {creds.token}") == node_user("n1")
    assert _mode(tmp_path / "tokens" / "nodes.json") == 0o600
    assert creds.token not in (tmp_path / "tokens" / "nodes.json").read_text()  # stored hashed
    # survives a restart
    assert Authenticator.load(tmp_path / "tokens").authenticate(f"Bearer {creds.token}") == node_user("n1")
    # a re-join with the same password rotates the token
    again = auth.join("n1", password, node_exists=True)
    assert auth.authenticate(f"Bearer {creds.token}") is None
    assert auth.authenticate(f"Bearer {again.token}") == node_user("n1")
    # another machine may not take the name while the Node exists ...
    with pytest.raises(ApiError) as exc:
        auth.join("n1", "q" * 32, node_exists=True)
    assert exc.value.code == 403 and "different node password" in exc.value.message
    assert auth.authenticate(f"Bearer {again.token}") == node_user("n1")
    # ... but may once it is deleted
    assert auth.join("n1", "q" * 32, node_exists=False).node_name == "n1"
    with pytest.raises(ApiError) as exc:
        auth.join("n2", "short", node_exists=False)
    assert exc.value.code == 400


def test_join_secret_check(tmp_path: Path) -> None:
    auth = Authenticator.load(tmp_path / "tokens")
    auth.check_join_secret(f"Bearer {auth.join_secret}")
    auth.check_join_secret(f"Bearer {format_join_token('0' * 64, auth.join_secret)}")
    for bad in (None, "Bearer x" * 3, f"Bearer {auth.admin_token}", f"Bearer node:{'0' * 64}"):
        with pytest.raises(ApiError) as exc:
            auth.check_join_secret(bad)
        assert exc.value.code == 401


def test_kubelet_tokens_are_per_node_and_stable(tmp_path: Path) -> None:
    auth = Authenticator.load(tmp_path / "tokens")
    assert auth.kubelet_token("n1") == Authenticator.load(tmp_path / "tokens").kubelet_token("n1")
    assert auth.kubelet_token("n1") != auth.kubelet_token("n2")
    assert Authenticator.load(tmp_path / "other").kubelet_token("n1") != auth.kubelet_token("n1")


def test_kubelet_accepts_only_its_token() -> None:
    check = bearer_token_authenticator("k" * 64)

    def req(headers: dict[str, str]) -> Request:
        return Request("GET", "/pods", {}, headers, ("127.0.0.1", 1))

    assert check(req({"Authorization": "Bearer " + "k" * 64}))
    assert check(req({"authorization": "Bearer " + "k" * 64}))
    assert not check(req({}))
    assert not check(req({"Authorization": "Bearer " + "x" * 64}))
    assert not check(req({"Authorization": "k" * 64}))
    with pytest.raises(ValueError):
        bearer_token_authenticator("")


# ---------------------------------------------------------------- certificates

def test_certificates_are_made_once_and_verify(tmp_path: Path) -> None:
    tls_dir = tmp_path / "tls"
    sans = pki.default_sans("127.0.0.1", "10.96.0.0/12", ["mkube.example.com", "203.0.113.7"])
    files = pki.ensure(tls_dir, sans)
    assert _mode(tls_dir) == 0o700
    for key in (files.ca_key, files.key):
        assert _mode(key) == 0o600
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    names = pki.cert_sans(cert)
    for want in ("127.0.0.1", "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                 "10.96.0.1", "mkube.example.com", "203.0.113.7"):
        assert want in names
    ca = x509.load_pem_x509_certificate(files.ca_pem)
    assert (ca.not_valid_after_utc - ca.not_valid_before_utc).days >= 3650
    # Python's TLS stack accepts the pair (the server side loads it, the client side trusts the CA)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(files.cert, files.key)
    ssl.create_default_context(cafile=str(files.ca_cert))
    cert.verify_directly_issued_by(ca)

    # reused as they are when nothing changed
    before = {p: p.read_bytes() for p in (files.ca_cert, files.ca_key, files.cert, files.key)}
    pki.ensure(tls_dir, sans)
    assert {p: p.read_bytes() for p in before} == before
    # a new SAN: a new serving certificate from the same CA
    files2 = pki.ensure(tls_dir, [*sans, "198.51.100.9"])
    assert files2.ca_pem == files.ca_pem and files2.ca_key.read_bytes() == before[files.ca_key]
    assert files2.cert.read_bytes() != before[files.cert]
    assert "198.51.100.9" in pki.cert_sans(x509.load_pem_x509_certificate(files2.cert.read_bytes()))


def test_default_sans() -> None:
    sans = pki.default_sans("0.0.0.0", "10.100.0.0/16", ["Example.COM."], advertise_address="192.0.2.10")
    assert "0.0.0.0" not in sans and "10.100.0.1" in sans and "example.com" in sans and "192.0.2.10" in sans
    assert len(sans) == len(set(sans))
    for ip in pki.local_ips():
        ipaddress.ip_address(ip)


@pytest.mark.parametrize(("value", "ok"), [
    ("10.0.0.1", True), ("fd00::1", True), ("api.example.com", True), ("*.example.com", True), ("vm1", True),
    ("bad name", False), ("", False), ("-x.example.com", False), ("a..b", False), ("x" * 64 + ".com", False),
])
def test_san_values_are_checked(value: str, ok: bool) -> None:
    assert (pki.san_error(value) is None) == ok
