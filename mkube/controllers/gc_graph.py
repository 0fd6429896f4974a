"""The garbage collector's ownership graph (Kubernetes' GraphBuilder), pure and thread-safe.

Nodes are objects keyed by uid; edges go from an owner to its dependents (from the
dependents' `metadata.ownerReferences`). An owner referenced before it was observed
gets a *virtual* node (its identity comes from the reference) that the collector must
verify against the API. `observe()` and `forget()` feed informer events in and return
the work they imply:

- `delete` items: objects the collector must look at (a dependent whose owner went
  away, an owner waiting in foreground deletion, a virtual owner to verify);
- `orphan` items: owners being deleted with the `orphan` finalizer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from mkube.api.types import OwnerReference

ORPHAN_FINALIZER = "orphan"
FOREGROUND_FINALIZER = "foregroundDeletion"


@dataclass(frozen=True)
class Identity:
    """Where an object lives: enough to GET it and to check it is still the same one."""

    api_version: str
    kind: str
    namespace: str  # "" for cluster-scoped objects
    name: str
    uid: str

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where} ({self.uid})"


@dataclass
class Node:
    identity: Identity
    owners: list[OwnerReference] = field(default_factory=list)
    dependents: set[str] = field(default_factory=set)  # uids
    virtual: bool = False
    being_deleted: bool = False
    deleting_dependents: bool = False  # foreground deletion in progress
    finalizers: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Work:
    kind: str  # "delete" | "orphan"
    uid: str


def owner_identity(ref: OwnerReference, dependent_namespace: str, namespaced: bool) -> Identity:
    """The owner a reference names, seen from a dependent in `dependent_namespace`."""
    return Identity(ref.api_version or "", ref.kind or "", dependent_namespace if namespaced else "",
                    ref.name or "", ref.uid or "")


class Graph:
    """See the module docstring. `namespaced(api_version, kind)` tells the scope of an owner
    kind (owners of namespaced objects are in the same namespace when namespaced)."""

    def __init__(self, namespaced: Callable[[str, str], bool]) -> None:
        self._namespaced = namespaced
        self._lock = threading.RLock()
        self._nodes: dict[str, Node] = {}

    # ------------------------------------------------------------------ reading
    def get(self, uid: str) -> Node | None:
        """A snapshot copy of the node (safe to read outside the lock)."""
        with self._lock:
            node = self._nodes.get(uid)
            if node is None:
                return None
            return Node(node.identity, list(node.owners), set(node.dependents), node.virtual,
                        node.being_deleted, node.deleting_dependents, node.finalizers)

    def dependents(self, uid: str) -> list[Node]:
        with self._lock:
            node = self._nodes.get(uid)
            if node is None:
                return []
            return [n for d in node.dependents if (n := self.get(d)) is not None]

    def blocking_dependents(self, uid: str) -> list[Node]:
        """Dependents whose reference to `uid` has blockOwnerDeletion=true."""
        return [d for d in self.dependents(uid)
                if any(r.uid == uid and r.block_owner_deletion for r in d.owners)]

    def __len__(self) -> int:
        with self._lock:
            return len(self._nodes)

    def __contains__(self, uid: object) -> bool:
        with self._lock:
            return uid in self._nodes

    # ------------------------------------------------------------------ events
    def observe(self, identity: Identity, owners: Iterable[OwnerReference], deleting: bool,
                finalizers: Iterable[str]) -> list[Work]:
        """An object was added or updated (informer event). Returns the work it implies."""
        owners = [o for o in owners if o.uid]
        finals = frozenset(finalizers)
        work: list[Work] = []
        with self._lock:
            node = self._nodes.get(identity.uid)
            if node is None:
                node = Node(identity)
                self._nodes[identity.uid] = node
                old_owners: list[OwnerReference] = []
                was_orphaning = was_foreground = False
            else:
                if node.virtual:
                    # An owner we only knew by reference is real: dependents that named it
                    # with other coordinates must be rechecked.
                    for dep_uid in node.dependents:
                        dep = self._nodes.get(dep_uid)
                        if dep is not None and not any(self._same_owner(r, dep, identity) for r in dep.owners):
                            work.append(Work("delete", dep_uid))
                    node.virtual = False
                    was_orphaning = was_foreground = False
                else:
                    was_orphaning = node.being_deleted and ORPHAN_FINALIZER in node.finalizers
                    was_foreground = node.deleting_dependents
                node.identity = identity
                old_owners = node.owners
            added = [o for o in owners if o.uid not in {x.uid for x in old_owners}]
            removed = [o for o in old_owners if o.uid not in {x.uid for x in owners}]
            changed = [o for o in owners for x in old_owners
                       if o.uid == x.uid and bool(o.block_owner_deletion) != bool(x.block_owner_deletion)]
            # Owners waiting for this dependent (foreground) may be unblocked now.
            for ref in [*removed, *changed]:
                owner = self._nodes.get(ref.uid or "")
                if owner is not None and owner.deleting_dependents:
                    work.append(Work("delete", owner.identity.uid))
            node.owners = owners
            for ref in removed:
                owner = self._nodes.get(ref.uid or "")
                if owner is not None:
                    owner.dependents.discard(identity.uid)
            for ref in added:
                work.extend(self._link(node, ref))
            node.being_deleted = deleting
            node.finalizers = finals
            if deleting and ORPHAN_FINALIZER in finals and not was_orphaning:
                work.append(Work("orphan", identity.uid))
            elif deleting and FOREGROUND_FINALIZER in finals:
                if not was_foreground:
                    node.deleting_dependents = True
                    work.extend(Work("delete", d) for d in node.dependents)
                    work.append(Work("delete", identity.uid))
            else:
                node.deleting_dependents = False
        return work

    def forget(self, uid: str) -> list[Work]:
        """An object is gone (informer DELETED, or verified absent). Returns the work implied:
        its dependents must be checked, and owners waiting on it may finish."""
        work: list[Work] = []
        with self._lock:
            node = self._nodes.pop(uid, None)
            if node is None:
                return work
            for dep_uid in node.dependents:
                if dep_uid in self._nodes:
                    work.append(Work("delete", dep_uid))
            for ref in node.owners:
                owner = self._nodes.get(ref.uid or "")
                if owner is None:
                    continue
                owner.dependents.discard(uid)
                if owner.deleting_dependents:
                    work.append(Work("delete", owner.identity.uid))
                if owner.virtual and not owner.dependents:
                    del self._nodes[owner.identity.uid]
        return work

    def mark_deleting_dependents(self, uid: str) -> None:
        with self._lock:
            node = self._nodes.get(uid)
            if node is not None:
                node.deleting_dependents = True

    # ------------------------------------------------------------------ internals
    def _same_owner(self, ref: OwnerReference, dep: Node, identity: Identity) -> bool:
        return owner_identity(ref, dep.identity.namespace,
                              self._namespaced(ref.api_version or "", ref.kind or "")) == identity

    def _link(self, node: Node, ref: OwnerReference) -> list[Work]:
        uid = ref.uid or ""
        owner = self._nodes.get(uid)
        if owner is None:
            ident = owner_identity(ref, node.identity.namespace,
                                   self._namespaced(ref.api_version or "", ref.kind or ""))
            owner = Node(ident, virtual=True)
            self._nodes[uid] = owner
            owner.dependents.add(node.identity.uid)
            return [Work("delete", uid)]  # verify the owner exists
        owner.dependents.add(node.identity.uid)
        if owner.deleting_dependents:
            return [Work("delete", node.identity.uid)]
        return []
