"""The base of every object type: camelCase wire names, unknown fields kept.

`KubeModel` subclasses declare snake_case attributes; on the wire they are camelCase
(`restart_policy` <-> `restartPolicy`). Fields whose Kubernetes name is not plain
camelCase (`podIP`, `clusterIP`, `hostIPC`) declare an explicit alias. Unknown fields
are kept (`extra="allow"`) so that a round-trip through mkube never drops what a newer
client sent.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class KubeModel(BaseModel):
    """Base for all API structs. Fields default to None; validation rules live in validation.py."""

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
        alias_generator=to_camel,
        validate_assignment=False,
        protected_namespaces=(),
    )

    def to_dict(self) -> dict[str, Any]:
        """Wire form: camelCase keys, None fields omitted, JSON-ready values."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parse the wire form (camelCase keys). Raises pydantic.ValidationError on wrong types."""
        return cls.model_validate(data)

    def copy_deep(self) -> Self:
        """A deep copy; use before changing an object taken from an informer cache."""
        return self.model_copy(deep=True)
