"""Joining a cluster as a node: trust the server's CA, exchange the join token.

    ca = fetch_ca(server, expected_hash)           # GET /cacerts, checked against the token
    creds = join(server, ca, join_token, node_name, node_password)   # POST /v1-mkube/join

`fetch_ca` reads the CA without verifying TLS — it cannot yet — and accepts it only if
its SHA-256 equals the hash in the join token (k3s' `K10<hash>::` scheme), so a server
in the middle cannot substitute its own. Everything after that verifies the server's
certificate against that CA. `AgentState` keeps what a node needs across restarts in
its data directory (files 0600).
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx

from mkube.api.jointoken import JoinToken, ca_hash

CACERTS_PATH = "/cacerts"
JOIN_PATH = "/v1-mkube/join"
TIMEOUT = 15.0


class JoinError(Exception):
    """Joining failed; the message says why and what to do. `retryable`: the server
    could not be reached (it may not be up yet), as opposed to a refusal."""

    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


def ssl_context(ca_file: str | os.PathLike[str]) -> ssl.SSLContext:
    """Verify servers against the CA in `ca_file` (hostname checked)."""
    return ssl.create_default_context(cafile=str(ca_file))


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_ca(ca_pem: bytes, expected_hash: str, where: str) -> None:
    """Raise JoinError unless sha256(ca_pem) == expected_hash."""
    actual = ca_hash(ca_pem)
    if not hmac.compare_digest(actual, expected_hash.lower()):
        raise JoinError(f"the CA certificate of {where} does not match the join token: its SHA-256 is {actual}, "
                        f"the token expects {expected_hash.lower()}. Refusing to trust it: either the token is "
                        f"from another cluster (or an older install of this server), or something between "
                        f"this machine and the server is impersonating it")


def fetch_ca(server: str, expected_hash: str) -> bytes:
    """The server's CA certificate (PEM), verified against `expected_hash`."""
    url = server.rstrip("/") + CACERTS_PATH
    try:
        resp = httpx.get(url, verify=False, timeout=TIMEOUT, trust_env=False)  # checked by hash below
    except httpx.HTTPError as e:
        raise JoinError(f"cannot fetch the CA certificate from {url}: {e or type(e).__name__}", retryable=True) from e
    if resp.status_code != 200 or b"BEGIN CERTIFICATE" not in resp.content:
        raise JoinError(f"{url} answered {resp.status_code} without a CA certificate: is {server} an mkube "
                        f"API server with TLS?")
    check_ca(resp.content, expected_hash, server)
    return resp.content


@dataclass(frozen=True)
class Credentials:
    node_name: str
    token: str  # the per-node API token (user system:node:<name>)
    kubelet_token: str  # what the API server presents to this node's kubelet


def join(server: str, ca_file: str, token: JoinToken, node_name: str, node_password: str) -> Credentials:
    """Exchange the join token for this node's credentials (TLS verified with `ca_file`)."""
    url = server.rstrip("/") + JOIN_PATH
    try:
        resp = httpx.post(url, json={"nodeName": node_name, "nodePassword": node_password},
                          headers={"Authorization": f"Bearer {token.secret}"}, verify=ssl_context(ca_file),
                          timeout=TIMEOUT, trust_env=False)
    except httpx.ConnectError as e:
        if "CERTIFICATE_VERIFY_FAILED" in str(e):
            raise JoinError(f"{server}'s TLS certificate is not signed by the cluster CA or does not name this "
                            f"address ({e}); on the server, add --tls-san with the address you joined") from e
        raise JoinError(f"cannot reach {url}: {e or type(e).__name__}", retryable=True) from e
    except httpx.HTTPError as e:
        raise JoinError(f"cannot reach {url}: {e or type(e).__name__}", retryable=True) from e
    try:
        body = resp.json()
    except ValueError:
        body = {}
    if resp.status_code == 401:
        raise JoinError(f"{server} refused the join token (401 Unauthorized): use the token in the server's "
                        f"<data-dir>/node-token")
    if resp.status_code != 201 or not isinstance(body, dict) or not body.get("token"):
        message = body.get("message") if isinstance(body, dict) else None
        raise JoinError(f"joining {server} as {node_name} failed ({resp.status_code}): {message or resp.text[:300]}")
    return Credentials(node_name=node_name, token=str(body["token"]), kubelet_token=str(body["kubeletToken"]))


@dataclass
class AgentState:
    """A node's files under `<dir>` (`<data-dir>/agent`): the server's CA, the node
    password (proves to the server that a re-join comes from the same machine) and the
    latest credentials."""

    dir: Path

    @property
    def ca_file(self) -> Path:
        return self.dir / "server-ca.crt"

    @property
    def credentials_file(self) -> Path:
        return self.dir / "credentials.json"

    def node_password(self) -> str:
        path = self.dir / "node-password"
        try:
            value = path.read_text().strip()
            if value:
                return value
        except FileNotFoundError:
            pass
        value = secrets.token_hex(32)
        _write_private(path, (value + "\n").encode())
        return value

    def save_ca(self, ca_pem: bytes) -> Path:
        _write_private(self.ca_file, ca_pem)
        return self.ca_file

    def save(self, server: str, creds: Credentials) -> None:
        _write_private(self.credentials_file, json.dumps(
            {"server": server.rstrip("/"), "nodeName": creds.node_name, "token": creds.token,
             "kubeletToken": creds.kubelet_token}, indent=1).encode())

    def load(self, server: str, node_name: str) -> Credentials | None:
        """The saved credentials if they are for `server` and `node_name`."""
        try:
            doc = json.loads(self.credentials_file.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(doc, dict) or doc.get("server") != server.rstrip("/"):
            return None
        if doc.get("nodeName") != node_name or not doc.get("token") or not self.ca_file.exists():
            return None
        return Credentials(node_name=node_name, token=str(doc.get("token") or ""),
                           kubelet_token=str(doc.get("kubeletToken") or ""))
