"""The node's own address, shared by the kubelet and the service proxy."""

from __future__ import annotations

import socket


def detect_node_ip() -> str:
    """The address of the default route's interface (no packet is sent), else 127.0.0.1."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.255", 9))  # TEST-NET-1: only selects a route
            return str(s.getsockname()[0])
    except OSError:
        return "127.0.0.1"
