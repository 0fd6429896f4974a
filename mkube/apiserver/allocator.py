"""Collision-free allocation of ClusterIPs and NodePorts, persisted in the Store.

Every allocated value is its own object in the store under the internal resource
`allocations.mkube.io` (namespace "", name `nodeport-30080` / `clusterip-10.96.0.10`),
created with `store.create`. The store's unique key (resource, namespace, name) is the
lock: `AlreadyExists` means taken. So two concurrent allocations — threads of one API
server, or several API servers sharing one PostgreSQL — can never get the same value,
and a restart never hands out a value that is in use.

A record names its owner (the Service's namespace, name and uid); `release` deletes a
record only when it still belongs to the releasing uid. The repair pass
(`services.repair`) reconciles records with the Services that exist.

The internal resource is not in the kinds table, so it is neither served by a REST
route nor listed by discovery, and namespace cleanup never sees it.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from mkube.api import timeutil
from mkube.api.errors import ApiError, is_already_exists, is_conflict, is_not_found
from mkube.apiserver.storage.base import Store

log = logging.getLogger(__name__)

Obj = dict[str, Any]
ALLOCATIONS = "allocations.mkube.io"
API_VERSION = "mkube.io/v1"
KIND = "Allocation"
#: Random picks before falling back to a scan of the free values.
RANDOM_TRIES = 16


class AllocationError(Exception):
    """Base of the allocator's refusals (the service layer turns them into 422)."""


class NotInRange(AllocationError):
    pass


class AlreadyAllocated(AllocationError):
    def __init__(self, value: str, owner: Obj | None) -> None:
        super().__init__(f"{value} is already allocated")
        self.owner = owner or {}


class RangeFull(AllocationError):
    pass


@dataclass(frozen=True)
class Owner:
    """Who holds a value: a Service, by uid (names are for humans and logs)."""

    namespace: str
    name: str
    uid: str

    def to_dict(self) -> Obj:
        return {"namespace": self.namespace, "name": self.name, "uid": self.uid}


class Range(Protocol):
    """A finite, ordered set of values, addressed by index 0..size-1."""

    @property
    def kind(self) -> str:
        """The record-name prefix: "nodeport", "clusterip"."""
        ...

    @property
    def size(self) -> int: ...

    def value_at(self, index: int) -> str: ...

    def index_of(self, value: str) -> int | None:
        """The index of `value`, None when it is not in the range (or malformed)."""
        ...

    def dynamic(self, index: int) -> bool:
        """Whether `allocate_next` may hand out this index (reserved values may only be requested)."""
        ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class PortRange:
    """An inclusive port range, e.g. 30000-32767."""

    first: int
    last: int
    kind: str = "nodeport"

    def __post_init__(self) -> None:
        if not (0 < self.first <= self.last <= 65535):
            raise ValueError(f"invalid port range {self.first}-{self.last}")

    @classmethod
    def parse(cls, spec: str | tuple[int, int]) -> PortRange:
        """`"30000-32767"` or `(30000, 32767)`; ValueError when malformed."""
        if isinstance(spec, tuple):
            return cls(int(spec[0]), int(spec[1]))
        first, sep, last = spec.partition("-")
        if not sep:
            raise ValueError(f"invalid port range {spec!r}: expected FIRST-LAST")
        return cls(int(first), int(last))

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    def value_at(self, index: int) -> str:
        return str(self.first + index)

    def index_of(self, value: str) -> int | None:
        try:
            port = int(value)
        except (TypeError, ValueError):
            return None
        return port - self.first if self.first <= port <= self.last else None

    def dynamic(self, index: int) -> bool:
        return True

    def describe(self) -> str:
        return f"{self.first}-{self.last}"


@dataclass(frozen=True)
class IPRange:
    """The host addresses of a CIDR. The first one (`.1`) is reserved for the
    `kubernetes` Service: it can be requested but is never handed out at random.
    For IPv4 the network and broadcast addresses are excluded (as Kubernetes does)."""

    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    kind: str = "clusterip"

    @classmethod
    def parse(cls, cidr: str) -> IPRange:
        net = ipaddress.ip_network(cidr, strict=False)
        if net.num_addresses < 4:
            raise ValueError(f"service CIDR {cidr} is too small")
        return cls(net)

    @property
    def _offset(self) -> int:
        return 1  # skip the network address

    @property
    def size(self) -> int:
        total = self.network.num_addresses - 1  # no network address
        if self.network.version == 4:
            total -= 1  # no broadcast address
        return total

    def value_at(self, index: int) -> str:
        return str(self.network.network_address + self._offset + index)

    def index_of(self, value: str) -> int | None:
        try:
            ip = ipaddress.ip_address(value)
        except (TypeError, ValueError):
            return None
        if ip.version != self.network.version or ip not in self.network:
            return None
        index = int(ip) - int(self.network.network_address) - self._offset
        return index if 0 <= index < self.size else None

    def dynamic(self, index: int) -> bool:
        return index != 0

    def first_ip(self) -> str:
        """The reserved first address, for the `kubernetes` Service."""
        return self.value_at(0)

    def describe(self) -> str:
        return str(self.network)


def record_name(kind: str, value: str) -> str:
    return f"{kind}-{value}"


class Allocator:
    """Allocates values of one `Range` as store records (see module docstring).

    All methods are thread-safe and blocking (they call the store)."""

    def __init__(self, store: Store, rng: Range, *, random_tries: int = RANDOM_TRIES,
                 rand: random.Random | None = None) -> None:
        self.store = store
        self.range = rng
        self.random_tries = random_tries
        self._rand = rand or random.Random()
        self._rand_lock = threading.Lock()

    # ------------------------------------------------------------------ claims
    def allocate(self, value: str, owner: Owner) -> str:
        """Claim `value` for `owner`; returns it normalised (e.g. `"30080"`).
        Idempotent for the same owner uid. Raises NotInRange or AlreadyAllocated."""
        index = self.range.index_of(value)
        if index is None:
            raise NotInRange(value)
        value = self.range.value_at(index)
        if not self._try_create(value, owner):
            raise AlreadyAllocated(value, self.owner_of(value))
        return value

    def allocate_next(self, owner: Owner) -> str:
        """Claim a free dynamic value: random picks first (cheap while the range is
        sparse), then a scan of what the store says is free. Raises RangeFull."""
        size = self.range.size
        for _ in range(min(self.random_tries, size)):
            index = self._random_index(size)
            if not self.range.dynamic(index):
                continue
            value = self.range.value_at(index)
            if self._try_create(value, owner, reuse_own=False):
                return value
        taken = set(self.allocated())
        start = self._random_index(size)
        for step in range(size):
            index = (start + step) % size
            if not self.range.dynamic(index):
                continue
            value = self.range.value_at(index)
            if value in taken:
                continue
            if self._try_create(value, owner, reuse_own=False):
                return value
        raise RangeFull(f"range {self.range.describe()} is full")

    def release(self, value: str, owner_uid: str) -> bool:
        """Free `value` if it is held by `owner_uid`; True when a record was deleted.
        A record held by someone else is left alone."""
        name = record_name(self.range.kind, value)
        for _ in range(5):
            try:
                rec = self.store.get(ALLOCATIONS, "", name)
            except ApiError as err:
                if is_not_found(err):
                    return False
                raise
            if owner_of_record(rec).get("uid") != owner_uid:
                return False
            rv = int((rec.get("metadata") or {}).get("resourceVersion") or 0) or None
            try:
                self.store.delete(ALLOCATIONS, "", name, expected_revision=rv)
                return True
            except ApiError as err:
                if is_not_found(err):
                    return False
                if not is_conflict(err):
                    raise
        return False

    def release_record(self, rec: Obj) -> bool:
        """Delete exactly this record (its resourceVersion must still match)."""
        md = rec.get("metadata") or {}
        rv = int(md.get("resourceVersion") or 0) or None
        try:
            self.store.delete(ALLOCATIONS, "", str(md.get("name")), expected_revision=rv)
            return True
        except ApiError as err:
            if is_not_found(err) or is_conflict(err):
                return False
            raise

    # ------------------------------------------------------------------ reads
    def owner_of(self, value: str) -> Obj | None:
        try:
            return owner_of_record(self.store.get(ALLOCATIONS, "", record_name(self.range.kind, value)))
        except ApiError as err:
            if is_not_found(err):
                return None
            raise

    def records(self) -> dict[str, Obj]:
        """value -> record, for every record of this range's kind (in range or not)."""
        prefix = self.range.kind + "-"
        out: dict[str, Obj] = {}
        for rec in self._list(prefix):
            name = str((rec.get("metadata") or {}).get("name") or "")
            out[name[len(prefix):]] = rec
        return out

    def allocated(self) -> Iterator[str]:
        return iter(self.records())

    def contains(self, value: str) -> bool:
        return self.range.index_of(value) is not None

    def normalise(self, value: str) -> str | None:
        index = self.range.index_of(value)
        return None if index is None else self.range.value_at(index)

    # ------------------------------------------------------------------ internals
    def _list(self, prefix: str) -> list[Obj]:
        def mine(obj: Obj) -> bool:
            return str((obj.get("metadata") or {}).get("name") or "").startswith(prefix)

        return self.store.list(ALLOCATIONS, "", predicate=mine).items

    def _random_index(self, size: int) -> int:
        with self._rand_lock:
            return self._rand.randrange(size)

    def _try_create(self, value: str, owner: Owner, *, reuse_own: bool = True) -> bool:
        """True when `owner` now holds `value`: newly, or (with `reuse_own`) already.
        A fresh pick must be new: one Service never gets the same dynamic value twice."""
        name = record_name(self.range.kind, value)
        body = {
            "apiVersion": API_VERSION, "kind": KIND,
            "metadata": {"name": name, "creationTimestamp": timeutil.now_str()},
            "spec": {"type": self.range.kind, "value": value, "owner": owner.to_dict()},
        }
        try:
            self.store.create(ALLOCATIONS, "", name, body)
            return True
        except ApiError as err:
            if not is_already_exists(err):
                raise
        if not reuse_own:
            return False
        held = self.owner_of(value)
        return held is not None and held.get("uid") == owner.uid


def owner_of_record(rec: Obj) -> Obj:
    owner = (rec.get("spec") or {}).get("owner")
    return owner if isinstance(owner, dict) else {}


def record_age_seconds(rec: Obj) -> float:
    """Seconds since the record was written (0 when unknown: treated as fresh)."""
    try:
        created = timeutil.parse_time((rec.get("metadata") or {}).get("creationTimestamp"))
    except (TypeError, ValueError):
        created = None
    if created is None:
        return 0.0
    return max(0.0, (timeutil.now() - created).total_seconds())
