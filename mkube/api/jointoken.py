"""Node join tokens in k3s form: `K10<sha256 hex of the CA PEM>::node:<secret>`.

The hash pins the cluster's CA: an agent that is given the token fetches the CA from
the server (unauthenticated, like k3s' `/cacerts`), and trusts it only if its SHA-256
matches, so a man in the middle cannot hand it another CA. The secret authenticates the
agent's one-time exchange of the join token for a per-node token. Shared by the API
server (which writes tokens) and the agent (which reads them), hence pure and here.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

PREFIX = "K10"
JOIN_USER = "node"
_HASH = re.compile(r"^[0-9a-f]{64}$")
_SECRET = re.compile(r"^[A-Za-z0-9._~+/=-]{16,256}$")


class JoinTokenError(ValueError):
    """The token is not one `mkube server` writes; the message says what is wrong."""


@dataclass(frozen=True)
class JoinToken:
    secret: str
    ca_hash: str | None = None  # lower-case hex SHA-256 of the CA certificate PEM; None for a bare secret

    def __str__(self) -> str:
        return format_join_token(self.ca_hash, self.secret) if self.ca_hash else self.secret


def ca_hash(ca_pem: bytes) -> str:
    """SHA-256 (lower-case hex) of the CA certificate file exactly as the server serves it."""
    return hashlib.sha256(ca_pem).hexdigest()


def format_join_token(hash_hex: str, secret: str) -> str:
    return f"{PREFIX}{hash_hex}::{JOIN_USER}:{secret}"


def parse_join_token(token: str) -> JoinToken:
    """`K10<hash>::node:<secret>` (full form) or a bare `<secret>` / `node:<secret>`.

    Raises JoinTokenError for anything else (empty, a malformed hash, a wrong user,
    a secret with whitespace or too short to be one the server made)."""
    token = token.strip()
    if not token:
        raise JoinTokenError("the join token is empty")
    hash_hex: str | None = None
    rest = token
    if token.startswith(PREFIX) and "::" in token:
        hash_hex, _, rest = token[len(PREFIX):].partition("::")
        hash_hex = hash_hex.lower()
        if not _HASH.match(hash_hex):
            raise JoinTokenError("the join token's CA hash (between K10 and ::) is not 64 hex digits")
    user, sep, secret = rest.partition(":")
    if not sep:
        user, secret = JOIN_USER, rest
    if user != JOIN_USER:
        raise JoinTokenError(f"the join token is for user {user!r}; nodes join with a '{JOIN_USER}:' token")
    if not _SECRET.match(secret):
        raise JoinTokenError("the join token's secret is malformed (expected the token `mkube server` wrote to "
                             "<data-dir>/node-token)")
    return JoinToken(secret=secret, ca_hash=hash_hex)
