"""`Status`: what a plugin answers for one pod on one node (or for one pod overall).

Codes follow kube-scheduler's framework: Success, Unschedulable (this node might fit
after the cluster changes, e.g. after preemption or a pod finishing),
UnschedulableAndUnresolvable (nothing but a change to the node or the pod makes it
fit), Error (a bug or bad data; the pod is retried with backoff), Skip (a pre-filter or
pre-score says "this plugin has nothing to check for this pod").
"""

from __future__ import annotations

from enum import IntEnum


class Code(IntEnum):
    SUCCESS = 0
    ERROR = 1
    UNSCHEDULABLE = 2
    UNSCHEDULABLE_AND_UNRESOLVABLE = 3
    SKIP = 4


class Status:
    """A code with the human reasons behind it (each reason is counted in FitError)."""

    __slots__ = ("code", "reasons", "plugin")

    def __init__(self, code: Code = Code.SUCCESS, *reasons: str, plugin: str = "") -> None:
        self.code = code
        self.reasons: tuple[str, ...] = reasons
        self.plugin = plugin

    @property
    def success(self) -> bool:
        return self.code is Code.SUCCESS

    @property
    def rejected(self) -> bool:
        """Unschedulable or UnschedulableAndUnresolvable: the node does not fit."""
        return self.code is Code.UNSCHEDULABLE or self.code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE

    @property
    def message(self) -> str:
        return ", ".join(self.reasons)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Status) and (self.code, self.reasons) == (other.code, other.reasons)

    def __hash__(self) -> int:
        return hash((self.code, self.reasons))

    def __repr__(self) -> str:
        return f"Status({self.code.name}{', ' if self.reasons else ''}{', '.join(map(repr, self.reasons))})"


#: The one Success value: filters return it so the hot loop can test with `is`.
SUCCESS = Status(Code.SUCCESS)
#: "This plugin does not apply to this pod" (from pre_filter / pre_score).
SKIP = Status(Code.SKIP)


def unschedulable(*reasons: str) -> Status:
    return Status(Code.UNSCHEDULABLE, *reasons)


def unresolvable(*reasons: str) -> Status:
    return Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, *reasons)


def error(reason: str) -> Status:
    return Status(Code.ERROR, reason)
