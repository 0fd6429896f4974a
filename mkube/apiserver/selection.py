"""labelSelector / fieldSelector query parameters -> one predicate over wire dicts.

The only place the API server touches selector parsing (adapter over the selector
module), so that list, watch and deletecollection select exactly the same objects.
Malformed selectors and unsupported field labels are 400 BadRequest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mkube.api import selectors
from mkube.api.errors import BadRequest
from mkube.api.kinds import ResourceType

Obj = dict[str, Any]
Predicate = Callable[[Obj], bool]


def build_predicate(rt: ResourceType, label_selector: str | None, field_selector: str | None
                    ) -> Predicate | None:
    """A predicate selecting what both selectors select, or None when both are empty.
    400 BadRequest for a malformed selector or a field the kind does not support."""
    labels = None
    if label_selector and label_selector.strip():
        try:
            labels = selectors.parse_selector(label_selector)
        except ValueError as exc:
            raise BadRequest(f"unable to parse requirement: {exc} (labelSelector {label_selector!r})") from None
    fields = None
    if field_selector and field_selector.strip():
        try:
            fields = selectors.parse_field_selector(field_selector, rt.kind, rt.namespaced)
        except ValueError as exc:
            raise BadRequest(f"{exc} (fieldSelector {field_selector!r} on {rt.group_resource})") from None
        if fields.empty():
            fields = None
    if labels is not None and labels.empty():
        labels = None
    if labels is None and fields is None:
        return None

    def predicate(obj: Obj) -> bool:
        if labels is not None and not labels.matches((obj.get("metadata") or {}).get("labels") or {}):
            return False
        return fields is None or fields.matches(obj)

    return predicate
