"""Errors the client raises besides the server's own `mkube.api.errors.ApiError`s."""

from __future__ import annotations

from mkube.api.errors import ApiError


class ConnectionFailed(ApiError):
    """The API server could not be reached (refused, reset, TLS failure, timeout).

    A subclass of ApiError (code 503, reason "ServiceUnavailable") so that callers that
    handle "any API failure" also handle this one; `server` names the URL we tried.
    """

    def __init__(self, server: str, detail: str) -> None:
        super().__init__(message=f"cannot reach the API server at {server}: {detail}", code=503,
                         reason="ServiceUnavailable")
        self.server = server
        self.detail = detail


class ConfigError(Exception):
    """A kubeconfig file is missing, unreadable or incomplete."""
