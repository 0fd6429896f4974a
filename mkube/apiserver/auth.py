"""Authentication: who sends a request, from its `Authorization: Bearer` token.

Tokens live in `<data-dir>/tokens/` (directory 0700, files 0600), made at first start:

    admin        the admin token (user "system:admin", group system:masters): everything
    node-join    the secret of the node join token; `<data-dir>/node-token` holds the whole
                 join token `K10<sha256 of tls/ca.crt>::node:<secret>` (as k3s)
    kubelet-key  HMAC key of the API server -> kubelet tokens (see `kubelet_token`)
    nodes.json   one record per joined node: SHA-256 of its per-node token and of its
                 node password (tokens are never stored in clear)

The join token is shared by every node, so it identifies none: it is accepted only by
`POST /v1-mkube/join` (auth_http.py), which exchanges it for a per-node token bound to a
node name ("system:node:<name>"); every other request needs the admin or a per-node
token. To keep one node from taking another's name with the shared join token (k3s'
node-password check), the first join of a name records the joining agent's random node
password; a later join of that name must present the same password while the Node
object exists (delete the Node to let a re-installed machine take the name again).

With several API servers (PostgreSQL), give them the same `tls/` and `tokens/` files and
have nodes join through one of them: nodes.json is per data directory.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mkube.api.errors import BadRequest, Forbidden, Unauthorized
from mkube.api.jointoken import JoinTokenError, ca_hash, format_join_token, parse_join_token
from mkube.api.timeutil import now_str
from mkube.apiserver import pki
from mkube.apiserver.options import ApiServerOptions

log = logging.getLogger("mkube.apiserver")

ADMIN_USER = "system:admin"
MASTERS_GROUP = "system:masters"
NODES_GROUP = "system:nodes"
NODE_USER_PREFIX = "system:node:"
TOKEN_BYTES = 32  # 256-bit secrets (secrets.token_hex)
NODE_TOKEN_FILE = "node-token"


@dataclass(frozen=True)
class User:
    """An authenticated identity. `node` is set for node credentials (system:node:<node>)."""

    name: str
    groups: tuple[str, ...] = ()
    node: str | None = None

    @property
    def is_admin(self) -> bool:
        return MASTERS_GROUP in self.groups


ADMIN = User(ADMIN_USER, (MASTERS_GROUP, "system:authenticated"))


def node_user(node: str) -> User:
    return User(NODE_USER_PREFIX + node, (NODES_GROUP, "system:authenticated"), node=node)


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _read_or_make_secret(path: Path) -> str:
    try:
        value = path.read_text().strip()
        if value:
            os.chmod(path, 0o600)
            return value
    except FileNotFoundError:
        pass
    value = secrets.token_hex(TOKEN_BYTES)
    pki.write_private(path, (value + "\n").encode())
    return value


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive)."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None


@dataclass(frozen=True)
class NodeCredentials:
    """What a node gets for its join token: its API token and the token the API server
    presents to its kubelet (so the node can check that calls come from the API server)."""

    node_name: str
    token: str
    kubelet_token: str


class Authenticator:
    """Token checks of one API server; thread-safe. Load with `Authenticator.load(dir)`."""

    def __init__(self, tokens_dir: Path, admin_token: str, join_secret: str, kubelet_key: str,
                 nodes: dict[str, dict[str, str]]) -> None:
        self.tokens_dir = tokens_dir
        self._admin = admin_token
        self._join = join_secret
        self._kubelet_key = kubelet_key.encode()
        self._lock = threading.Lock()
        self._nodes = nodes  # node name -> {"tokenHash", "passwordHash", "joined"}
        self._by_hash = {rec["tokenHash"]: name for name, rec in nodes.items() if rec.get("tokenHash")}

    @classmethod
    def load(cls, tokens_dir: Path) -> Authenticator:
        """The tokens of `tokens_dir`, made on first use (0600 files in a 0700 directory)."""
        tokens_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(tokens_dir, 0o700)
        nodes: dict[str, dict[str, str]] = {}
        path = tokens_dir / "nodes.json"
        if path.exists():
            try:
                raw = json.loads(path.read_text() or "{}")
            except (OSError, ValueError) as e:
                raise RuntimeError(f"{path}: unreadable node token records ({e})") from e
            if isinstance(raw, dict):
                nodes = {str(k): dict(v) for k, v in raw.items() if isinstance(v, dict)}
            os.chmod(path, 0o600)
        return cls(tokens_dir, _read_or_make_secret(tokens_dir / "admin"),
                   _read_or_make_secret(tokens_dir / "node-join"),
                   _read_or_make_secret(tokens_dir / "kubelet-key"), nodes)

    @property
    def admin_token(self) -> str:
        return self._admin

    @property
    def join_secret(self) -> str:
        return self._join

    def authenticate(self, header: str | None) -> User | None:
        """The user of an Authorization header, or None (missing, malformed or unknown token).
        The join token is not accepted here (it only serves `join`)."""
        token = bearer(header)
        if token is None:
            return None
        if hmac.compare_digest(token.encode(), self._admin.encode()):
            return ADMIN
        node = self._by_hash.get(_sha256(token))
        return node_user(node) if node is not None else None

    def check_join_secret(self, header: str | None) -> None:
        """Accept `Bearer <join token>` (full K10 form or the bare secret); else Unauthorized."""
        token = bearer(header)
        if token is None:
            raise Unauthorized()
        try:
            secret = parse_join_token(token).secret
        except JoinTokenError:
            raise Unauthorized() from None
        if not hmac.compare_digest(secret.encode(), self._join.encode()):
            raise Unauthorized()

    def join(self, node_name: str, node_password: str, node_exists: bool) -> NodeCredentials:
        """Issue a fresh per-node token for `node_name` (the previous one stops working).

        Forbidden when the name was joined with another node password and its Node object
        still exists (another machine holding the join token must not take over a node)."""
        if not node_password or len(node_password) < 16:
            raise BadRequest("nodePassword: must be a random string of at least 16 characters")
        password_hash = _sha256(node_password)
        token = secrets.token_hex(TOKEN_BYTES)
        with self._lock:
            old = self._nodes.get(node_name)
            if old is not None and node_exists and old.get("passwordHash") \
                    and not hmac.compare_digest(old["passwordHash"], password_hash):
                raise Forbidden(f'nodes "{node_name}" is forbidden: node "{node_name}" already joined with a '
                                f"different node password; delete the Node (kubectl delete node {node_name}) to "
                                f"let another machine take this name, or join with another --node-name",
                                kind="nodes", name=node_name)
            if old is not None:
                self._by_hash.pop(old.get("tokenHash", ""), None)
            record = {"tokenHash": _sha256(token), "passwordHash": password_hash, "joined": now_str()}
            nodes = dict(self._nodes)
            nodes[node_name] = record
            pki.write_private(self.tokens_dir / "nodes.json", json.dumps(nodes, indent=1, sort_keys=True).encode())
            self._nodes = nodes
            self._by_hash[record["tokenHash"]] = node_name
        log.info("node joined", extra={"node": node_name})
        return NodeCredentials(node_name=node_name, token=token, kubelet_token=self.kubelet_token(node_name))

    def kubelet_token(self, node_name: str) -> str:
        """The bearer token the API server presents to the kubelet of `node_name`.

        HMAC-SHA256(kubelet-key, node name): the API server derives it for any node without
        storing it, and each node learns only its own (a compromised node cannot call
        other nodes' kubelets). It travels in clear on the kubelet port (HTTP); see
        mkube/kubelet/auth.py."""
        return hmac.new(self._kubelet_key, f"kubelet:{node_name}".encode(), hashlib.sha256).hexdigest()

    def node_names(self) -> Iterable[str]:
        return list(self._nodes)


@dataclass(frozen=True)
class Security:
    """Everything a secure API server needs at start: certificates and tokens."""

    tls: pki.TlsFiles
    authenticator: Authenticator
    join_token: str  # K10<ca hash>::node:<secret>
    join_token_path: Path

    @property
    def admin_token(self) -> str:
        return self.authenticator.admin_token


def prepare(options: ApiServerOptions) -> Security:
    """Make (first start) or load the CA, the serving certificate and the tokens of
    `options.data_dir` (made 0700), and write `<data-dir>/node-token` (0600). Idempotent."""
    data_dir = Path(options.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    # the database holds Secrets and the directory the keys: owner only (as k3s' server dir)
    os.chmod(data_dir, os.stat(data_dir).st_mode & 0o700)
    sans = pki.default_sans(options.bind_address, options.service_cluster_ip_range, options.tls_sans,
                            options.advertise_address)
    tls = pki.ensure(data_dir / "tls", sans)
    authenticator = Authenticator.load(data_dir / "tokens")
    join_token = format_join_token(ca_hash(tls.ca_pem), authenticator.join_secret)
    path = data_dir / NODE_TOKEN_FILE
    try:
        current = path.read_text().strip()
    except FileNotFoundError:
        current = ""
    if current != join_token:
        pki.write_private(path, (join_token + "\n").encode())
    os.chmod(path, 0o600)
    return Security(tls=tls, authenticator=authenticator, join_token=join_token, join_token_path=path)
