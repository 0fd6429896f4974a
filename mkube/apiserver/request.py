"""What the dispatcher knows about one resource request, and the query parameters
every verb shares (dryRun, fieldValidation, resourceVersion, limit, ...)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from mkube.api.errors import BadRequest
from mkube.api.fielderrors import INT64_MAX
from mkube.api.kinds import ResourceType
from mkube.apiserver.context import ServerContext

Obj = dict[str, Any]

FIELD_VALIDATION = ("Strict", "Warn", "Ignore")


@dataclass
class ResourceRequest:
    request: Request
    ctx: ServerContext
    rt: ResourceType
    namespace: str | None  # from the path; None for cluster scope / all namespaces
    name: str | None
    subresource: str | None
    watch_path: bool = False  # legacy /watch/ prefix

    def q(self, key: str) -> str | None:
        if not self.request.scope.get("query_string"):  # most writes: skip parsing an empty query
            return None
        return self.request.query_params.get(key)

    @property
    def dry_run(self) -> bool:
        if not self.request.scope.get("query_string"):
            return False
        values = self.request.query_params.getlist("dryRun")
        for v in values:
            if v != "All":
                raise BadRequest(f'dryRun: Unsupported value: "{v}": supported values: "All"')
        return bool(values)

    @property
    def field_validation(self) -> str:
        v = self.q("fieldValidation")
        if v in (None, ""):
            # Kubernetes defaults to Warn; mkube keeps unknown fields (nothing is dropped,
            # so there is nothing to warn about) and skips the extra parse unless asked.
            return "Ignore"
        if v not in FIELD_VALIDATION:
            raise BadRequest(f'fieldValidation: Unsupported value: "{v}": supported values: "Strict", "Warn", "Ignore"')
        return v

    def int_param(self, key: str, *, minimum: int | None = 0, maximum: int = INT64_MAX) -> int | None:
        """The integer query parameter `key` (None when absent); 400 when it is not an
        integer or lies outside [minimum, maximum] (by default Kubernetes' int64)."""
        raw = self.q(key)
        if raw in (None, ""):
            return None
        try:
            value = int(raw)  # type: ignore[arg-type]
        except ValueError:
            raise BadRequest(f"{key}: invalid value {raw!r}: must be an integer") from None
        if minimum is not None and value < minimum:
            raise BadRequest(f"{key}: invalid value {value}: must be greater than or equal to {minimum}")
        if value > maximum:
            raise BadRequest(f"{key}: invalid value {value}: must be less than or equal to {maximum}")
        return value

    def bool_param(self, key: str) -> bool:
        raw = self.q(key)
        if raw in (None, "", "0", "false", "False"):
            return False
        if raw in ("1", "true", "True"):
            return True
        raise BadRequest(f"{key}: invalid value {raw!r}: must be true or false")

    @property
    def is_watch(self) -> bool:
        return self.watch_path or self.bool_param("watch")
