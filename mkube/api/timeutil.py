"""RFC 3339 timestamps as Kubernetes writes them (`2026-11-27T20:18:26Z`)."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)


def format_time(t: datetime) -> str:
    """Seconds precision, `Z` suffix (metav1.Time)."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_micro(t: datetime) -> str:
    """Microsecond precision (metav1.MicroTime, used by Lease renewTime)."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_str() -> str:
    return format_time(now())


def parse_time(value: str | None) -> datetime | None:
    """Parse what Kubernetes writes (with or without fractions, `Z` or offset). None for
    None, "" and anything unparsable: callers treat an unknown time as unknown, so a
    garbage time some client stored cannot make a controller fail (and retry) forever."""
    if not value:
        return None
    try:
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        t = datetime.fromisoformat(text)
    except (ValueError, TypeError, AttributeError):
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)
