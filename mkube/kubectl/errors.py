"""User-facing failures and their one-line wording (kubectl's, where kubectl has one).

`CommandError("x")` prints `error: x`; `ExitError(n)` exits with n after the command has
printed its own messages; `error_line(err)` words an ApiError the way kubectl's
`cmdutil.CheckErr` does.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from mkube.api.errors import ApiError
from mkube.client.errors import ConnectionFailed


class CommandError(Exception):
    """A failure the user caused or can fix: printed as `error: <message>`, exit 1."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class ExitError(Exception):
    """Exit with `code`; the command already printed what went wrong."""

    def __init__(self, code: int = 1) -> None:
        super().__init__(code)
        self.code = code


def _host_port(server: str) -> str:
    parts = urlsplit(server)
    if parts.port is not None:
        return f"{parts.hostname}:{parts.port}"
    default = 443 if parts.scheme == "https" else 80
    return f"{parts.hostname or server}:{default}"


def connection_error_line(err: ConnectionFailed) -> str:
    """kubectl's wording for an unreachable API server."""
    detail = err.detail.lower()
    if "refused" in detail:
        return (f"The connection to the server {_host_port(err.server)} was refused - did you specify the "
                f"right host or port?")
    return f"Unable to connect to the server: {err.detail}"


def _cause_text(field: str, message: str) -> str:
    if not field or message.startswith(f"{field}: ") or message.startswith(f"{field} "):
        return message
    return f"{field}: {message}"


def error_line(err: ApiError) -> str:
    """One ApiError as kubectl prints it (may span lines only for several Invalid causes)."""
    if isinstance(err, ConnectionFailed):
        return connection_error_line(err)
    if err.reason == "Unauthorized":
        return f"error: You must be logged in to the server ({err.message or 'Unauthorized'})"
    if err.code == 422 and err.reason == "Invalid" and (err.kind or err.name):
        head = f'The {err.kind or ""} "{err.name or ""}" is invalid'
        causes = [_cause_text(c.field, c.message) for c in err.causes]
        if len(causes) == 1:
            return f"{head}: {causes[0]}"
        if causes:
            return f"{head}: \n" + "\n".join(f"* {c}" for c in causes)
        return head
    if err.reason:
        return f"Error from server ({err.reason}): {err.message}"
    return f"Error from server: {err.message}"


def with_source(err: ApiError, verb: str, source: str) -> ApiError:
    """kubectl's AddSourceToErr: `error when creating "web.yaml": <message>` (same class)."""
    if source and not isinstance(err, ConnectionFailed):
        err.message = f'error when {verb} "{source}": {err.message}'
    return err
