"""The interface that holds Service ClusterIPs on this node (like kube-proxy's kube-ipvs0).

Each ClusterIP is added as a /32 (/128) to a dedicated interface, `mkube0` by default:
a `dummy` link, or an empty `bridge` where the kernel has no dummy driver (both are
never-forwarding, locally-owned addresses). The host then owns the address, so a
listener bound to `ClusterIP:port` receives connections from the node itself and from
pods on its Docker bridge (their default route is the host). A ClusterIP without
ready endpoints keeps its address but has no listener: connections are refused at
once (RST) instead of hanging.

Needs root (CAP_NET_ADMIN) and the `ip` tool; without them `ClusterIPInterface.usable`
is False, the proxy logs that once and serves NodePorts only. Commands are batched
(`ip -force -batch -`), so a thousand Services cost one process start, not a thousand.

Only addresses this process added are ever removed, and the interface is deleted on
shutdown only if this process created it and nothing else is left on it: a second
proxy on the same host (tests, a restart overlapping the old process) cannot pull
addresses out from under another. Each sync re-reads the interface, so an address
removed behind our back is added again.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import shutil

log = logging.getLogger(__name__)

DEFAULT_NAME = "mkube0"


class ClusterIPInterface:
    """Owns the addresses of one interface; `sync(ips)` makes them exactly `ips`."""

    def __init__(self, name: str = DEFAULT_NAME, enabled: bool = True) -> None:
        self.name = name
        self.enabled = enabled
        self.usable = False
        self.created = False
        self._current: set[str] = set()
        self._added: set[str] = set()  # addresses this process put there
        self._reason_logged = False

    async def setup(self) -> bool:
        """Create the interface if needed and learn its addresses; True when usable."""
        if not self.enabled:
            log.info("ClusterIPs are not served on this node (disabled by configuration)")
            self._reason_logged = True
            self.usable = False
            return False
        if os.geteuid() != 0:
            return self._unusable("not running as root")
        if shutil.which("ip") is None:
            return self._unusable("the `ip` tool is not installed")
        code, _ = await _ip("link", "show", "dev", self.name)
        if code != 0:
            for kind in ("dummy", "bridge"):
                code, out = await _ip("link", "add", self.name, "type", kind)
                if code == 0:
                    self.created = True
                    break
            if not self.created:
                return self._unusable(f"cannot create interface {self.name}: {out.strip()}")
        code, out = await _ip("link", "set", self.name, "up")
        if code != 0:
            return self._unusable(f"cannot bring {self.name} up: {out.strip()}")
        self._current = await self._read()
        self.usable = True
        log.info("ClusterIPs are held on interface %s", self.name)
        return True

    def _unusable(self, reason: str) -> bool:
        if not self._reason_logged:
            log.warning("ClusterIPs are not served on this node (%s); NodePorts are", reason)
            self._reason_logged = True
        self.usable = False
        return False

    async def _read(self) -> set[str]:
        code, out = await _ip("-o", "addr", "show", "dev", self.name)
        if code != 0:
            return set()
        found = set()
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 4 and parts[2] in ("inet", "inet6"):
                addr = parts[3].split("/")[0]
                if not ipaddress.ip_address(addr).is_link_local:
                    found.add(addr)
        return found

    async def sync(self, ips: set[str]) -> set[str]:
        """Add the missing addresses and remove the ones this process added that are no
        longer wanted; returns the addresses the interface holds."""
        if not self.usable:
            return set()
        self._current = await self._read()
        add = sorted(ips - self._current)
        remove = sorted((self._added & self._current) - ips)
        self._added -= set(remove)
        if not add and not remove:
            return set(self._current)
        lines = [f"addr del {ip}/{_prefix(ip)} dev {self.name}" for ip in remove]
        lines += [f"addr add {ip}/{_prefix(ip)} dev {self.name}" for ip in add]
        code, out = await _ip("-force", "-batch", "-", stdin="\n".join(lines) + "\n")
        if code != 0:
            log.warning("updating the addresses of %s partly failed: %s", self.name, out.strip()[:500])
        self._current = await self._read()
        self._added |= set(add) & self._current
        return set(self._current)

    async def cleanup(self) -> None:
        """Remove the addresses this process added; delete the interface if this process
        created it and it is empty then."""
        if not self.usable:
            return
        left = await self.sync(set())
        if self.created and not left:
            await _ip("link", "del", self.name)
        self._current = set()
        self.usable = False


def _prefix(ip: str) -> int:
    return 32 if ipaddress.ip_address(ip).version == 4 else 128


async def _ip(*args: str, stdin: str | None = None) -> tuple[int, str]:
    """Run `ip ARGS`; returns (exit code, stdout+stderr)."""
    try:
        proc = await asyncio.create_subprocess_exec(
            "ip", *args, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    except OSError as exc:
        return 127, str(exc)
    out, _ = await proc.communicate(stdin.encode() if stdin is not None else None)
    return proc.returncode or 0, out.decode(errors="replace")
