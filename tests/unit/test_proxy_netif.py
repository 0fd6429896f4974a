"""The ClusterIP interface degrades to "NodePorts only" (logged once) when it cannot work."""

from __future__ import annotations

import asyncio
import logging

import pytest

from mkube.kubelet.proxy import netif
from mkube.kubelet.proxy.netif import ClusterIPInterface


def test_not_root_means_no_cluster_ips_logged_once(monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(netif.os, "geteuid", lambda: 1000)
    iface = ClusterIPInterface("mkt-unit")
    with caplog.at_level(logging.WARNING, logger=netif.__name__):
        assert asyncio.run(iface.setup()) is False
        assert asyncio.run(iface.setup()) is False
        assert asyncio.run(iface.sync({"10.96.0.10"})) == set()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["ClusterIPs are not served on this node (not running as root); NodePorts are"]
    assert not iface.usable


def test_missing_ip_tool_means_no_cluster_ips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netif.os, "geteuid", lambda: 0)
    monkeypatch.setattr(netif.shutil, "which", lambda _name: None)
    iface = ClusterIPInterface("mkt-unit")
    assert asyncio.run(iface.setup()) is False and not iface.usable


def test_disabled_by_configuration() -> None:
    iface = ClusterIPInterface("mkt-unit", enabled=False)
    assert asyncio.run(iface.setup()) is False
    asyncio.run(iface.cleanup())  # nothing to undo
