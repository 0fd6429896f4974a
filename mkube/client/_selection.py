"""labelSelector / fieldSelector query parameters -> one predicate over wire dicts (fake client).

Built on mkube.api.selectors with the same rules as the API server: malformed selectors
and field labels a kind does not support are 400 BadRequest.
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
    """One predicate for both selectors (None when both are empty). Raises BadRequest."""
    try:
        labels = selectors.parse_selector(label_selector)
    except ValueError as e:
        raise BadRequest(f"unable to parse requirement: {e} (labelSelector {label_selector!r})") from None
    try:
        fields = selectors.parse_field_selector(field_selector, rt.kind, rt.namespaced)
    except ValueError as e:
        raise BadRequest(f"{e} (fieldSelector {field_selector!r} for {rt.group_resource})") from None
    if labels.empty() and fields.empty():
        return None

    def predicate(obj: Obj) -> bool:
        return labels.matches((obj.get("metadata") or {}).get("labels")) and fields.matches(obj)

    return predicate
