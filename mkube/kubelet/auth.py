"""Who may use the kubelet's logs/exec port: the API server, and no one else.

Design: when a node joins, the API server gives it a kubelet token, HMAC-SHA256 of a
server-side key and the node's name (mkube/apiserver/auth.py). The API server derives
the same value whenever it proxies `pods/log` (or exec) to that node and sends it as
`Authorization: Bearer <kubelet token>`; the kubelet compares in constant time. Each
node knows only its own token, so a compromised node cannot call another node's
kubelet, and nothing needs a call back to the API server per request.

Limits, on purpose for now: the kubelet port is plain HTTP, so someone who can sniff
the network between the API server and a node can replay that node's token (Kubernetes
serves the kubelet over HTTPS and authenticates the API server's client certificate);
requests without a valid token get 401 either way.
"""

from __future__ import annotations

import hmac

from mkube.kubelet.server import Authenticate, Request


def bearer_token_authenticator(token: str) -> Authenticate:
    """An `authenticate` hook for KubeletHTTPServer accepting only `Bearer <token>`."""
    if not token:
        raise ValueError("the kubelet token must not be empty")
    expected = f"Bearer {token}".encode()

    def authenticate(request: Request) -> bool:
        header = next((v for k, v in request.headers.items() if k.lower() == "authorization"), "")
        return hmac.compare_digest(header.strip().encode(), expected)

    return authenticate
