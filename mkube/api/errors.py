"""API errors as Kubernetes `Status` objects.

Every failure the API server reports, and every failure the client raises, is an
`ApiError` carrying the HTTP code, the Kubernetes `reason` and, for 422 Invalid, one
`Cause` per bad field. `to_status()` gives the wire form (kind: Status).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Cause:
    """One reason a request was refused, usually naming the field (`spec.replicas`)."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"

    def to_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}

    def summary(self) -> str:
        """`field: message`, as Kubernetes joins causes into the Status message."""
        return f"{self.field}: {self.message}" if self.field else self.message


@dataclass
class ApiError(Exception):
    """An error with a Kubernetes Status shape. Subclasses fix code and reason."""

    message: str
    code: int = 500
    reason: str = "InternalError"
    kind: str | None = None  # details.kind, e.g. "pods"
    name: str | None = None  # details.name
    group: str | None = None
    causes: list[Cause] = field(default_factory=list)
    retry_after_seconds: int | None = None

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message

    def to_status(self) -> dict[str, Any]:
        """The wire form: a `Status` object, as kubectl expects it."""
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        details: dict[str, Any] = {}
        if self.name is not None:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind is not None:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = [c.to_dict() for c in self.causes]
        if self.retry_after_seconds is not None:
            details["retryAfterSeconds"] = self.retry_after_seconds
        if details:
            status["details"] = details
        return status

    @classmethod
    def from_status(cls, status: dict[str, Any], http_code: int | None = None) -> ApiError:
        """Rebuild the matching subclass from a Status body (used by the client)."""
        code = int(status.get("code") or http_code or 500)
        details = status.get("details") or {}
        causes = [Cause(field=c.get("field", ""), message=c.get("message", ""), reason=c.get("reason", ""))
                  for c in details.get("causes") or []]
        sub = conflict_or_exists(status) if code == 409 else _BY_CODE.get(code, ApiError)
        err = sub.__new__(sub)
        ApiError.__init__(err, message=status.get("message", ""), code=code,
                          reason=status.get("reason") or "Unknown", kind=details.get("kind"),
                          name=details.get("name"), group=details.get("group"), causes=causes,
                          retry_after_seconds=details.get("retryAfterSeconds"))
        return err


def _qualified(kind: str, group: str | None) -> str:
    return f"{kind}.{group}" if group else kind


class BadRequest(ApiError):
    def __init__(self, message: str, causes: list[Cause] | None = None) -> None:
        super().__init__(message=message, code=400, reason="BadRequest", causes=causes or [])


class Unauthorized(ApiError):
    def __init__(self, message: str = "Unauthorized") -> None:
        super().__init__(message=message, code=401, reason="Unauthorized")


class Forbidden(ApiError):
    def __init__(self, message: str, kind: str | None = None, name: str | None = None) -> None:
        super().__init__(message=message, code=403, reason="Forbidden", kind=kind, name=name)


class NotFound(ApiError):
    def __init__(self, kind: str, name: str, group: str | None = None, message: str | None = None) -> None:
        super().__init__(message=message or f'{_qualified(kind, group)} "{name}" not found', code=404,
                         reason="NotFound", kind=kind, name=name, group=group)


class MethodNotAllowed(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__(message=message, code=405, reason="MethodNotAllowed")


class NotAcceptable(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__(message=message, code=406, reason="NotAcceptable")


class AlreadyExists(ApiError):
    def __init__(self, kind: str, name: str, group: str | None = None) -> None:
        super().__init__(message=f'{_qualified(kind, group)} "{name}" already exists', code=409,
                         reason="AlreadyExists", kind=kind, name=name, group=group)


class Conflict(ApiError):
    def __init__(self, kind: str, name: str, message: str, group: str | None = None) -> None:
        super().__init__(
            message=f'Operation cannot be fulfilled on {_qualified(kind, group)} "{name}": {message}',
            code=409, reason="Conflict", kind=kind, name=name, group=group)


class Gone(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__(message=message, code=410, reason="Expired")


class RequestEntityTooLarge(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__(message=message, code=413, reason="RequestEntityTooLarge")


class UnsupportedMediaType(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__(message=message, code=415, reason="UnsupportedMediaType")


class Invalid(ApiError):
    """422: the object is well-formed but breaks a rule; one Cause per bad field."""

    def __init__(self, kind: str, name: str, causes: list[Cause], group: str | None = None) -> None:
        listed = ", ".join(c.summary() for c in causes)
        if len(causes) > 1:
            listed = f"[{listed}]"
        super().__init__(message=f'{kind}{"." + group if group else ""} "{name}" is invalid: {listed}',
                         code=422, reason="Invalid", kind=kind, name=name, group=group, causes=causes)


class TooManyRequests(ApiError):
    def __init__(self, message: str, retry_after_seconds: int = 1) -> None:
        super().__init__(message=message, code=429, reason="TooManyRequests",
                         retry_after_seconds=retry_after_seconds)


class InternalError(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__(message=message, code=500, reason="InternalError")


class ServiceUnavailable(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__(message=message, code=503, reason="ServiceUnavailable")


_BY_CODE: dict[int, type[ApiError]] = {
    400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 405: MethodNotAllowed,
    406: NotAcceptable, 410: Gone, 413: RequestEntityTooLarge, 415: UnsupportedMediaType,
    422: Invalid, 429: TooManyRequests, 500: InternalError, 503: ServiceUnavailable,
}


def conflict_or_exists(status: dict[str, Any]) -> type[ApiError]:
    """409 covers two reasons; pick the class by reason."""
    return AlreadyExists if status.get("reason") == "AlreadyExists" else Conflict


def is_not_found(err: BaseException) -> bool:
    return isinstance(err, ApiError) and err.code == 404


def is_conflict(err: BaseException) -> bool:
    return isinstance(err, ApiError) and err.code == 409 and err.reason == "Conflict"


def is_already_exists(err: BaseException) -> bool:
    return isinstance(err, ApiError) and err.code == 409 and err.reason == "AlreadyExists"
