"""kubectl describe's text layout: a PrefixWriter (two spaces per level) over a Go
tabwriter (minwidth 0, padding 2), and the helpers every describer shares (labels,
annotations, taints, tolerations, events, times)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from mkube.api.tables import human_age, parse_time
from mkube.kubectl.tabwriter import TabWriter

Obj = dict[str, Any]
LEVEL_0, LEVEL_1, LEVEL_2, LEVEL_3, LEVEL_4 = range(5)
_SKIP_ANNOTATIONS = {"kubectl.kubernetes.io/last-applied-configuration"}
_MAX_ANNOTATION_LEN = 140


class PrefixWriter:
    """Accumulates describe output; `text()` returns it aligned like kubectl's (or with the
    tabs left in with `raw=True`, as `rollout history --revision` prints templates)."""

    def __init__(self, raw: bool = False) -> None:
        self._tw = TabWriter(minwidth=0, padding=2)
        self._done: list[str] = []
        self._raw = raw

    def write(self, level: int, text: str) -> None:
        self._tw.write("  " * level + text)

    def line(self, text: str = "") -> None:
        """WriteLine: the text and a newline, no indentation."""
        self._tw.write(text + "\n")

    def flush(self) -> None:
        if self._raw:
            self._done.append(self._tw.take_raw())
        else:
            self._done.append(self._tw.flush())

    def text(self) -> str:
        self.flush()
        return "".join(self._done)


# ---------------------------------------------------------------- values

def d(obj: Any, *path: str) -> Any:
    """Nested lookup in wire dicts; None when any step is missing."""
    cur = obj
    for p in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(p)
    return cur


def dl(obj: Any, *path: str) -> list[Any]:
    v = d(obj, *path)
    return v if isinstance(v, list) else []


def dm(obj: Any, *path: str) -> dict[str, Any]:
    v = d(obj, *path)
    return dict(v) if isinstance(v, Mapping) else {}


def s(v: Any) -> str:
    """Go's %v of a scalar (booleans lower-case, None empty)."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def or_none(v: Any) -> str:
    text = s(v)
    return text if text else "<none>"


def rfc1123z(ts: Any) -> str:
    """A timestamp as Go's time.RFC1123Z in local time ("Mon, 02 Jan 2006 15:04:05 -0700")."""
    t = parse_time(ts)
    if t is None:
        return "Mon, 01 Jan 0001 00:00:00 +0000"
    return t.astimezone().strftime("%a, %d %b %Y %H:%M:%S %z")


def since(ts: Any, now: float | None = None) -> str:
    """translateTimestampSince: "5m" ago, "<unknown>" when unset."""
    t = parse_time(ts)
    if t is None:
        return "<unknown>"
    ref = datetime.fromtimestamp(now if now is not None else time.time(), t.tzinfo)
    return human_age((ref - t).total_seconds())


# ---------------------------------------------------------------- shared sections

def labels_multiline(w: PrefixWriter, title: str, labels: Mapping[str, Any] | None,
                     initial_indent: str = "", inner_indent: str = "\t") -> None:
    """printLabelsMultilineWithIndent."""
    w.write(LEVEL_0, f"{initial_indent}{title}:{inner_indent}")
    keys = sorted(labels or {})
    if not keys:
        w.line("<none>")
        return
    for i, key in enumerate(keys):
        if i:
            w.write(LEVEL_0, initial_indent)
            w.write(LEVEL_0, inner_indent)
        w.write(LEVEL_0, f"{key}={s((labels or {})[key])}\n")


def annotations_multiline(w: PrefixWriter, title: str, annotations: Mapping[str, Any] | None) -> None:
    """printAnnotationsMultiline: long or multi-line values on lines of their own."""
    w.write(LEVEL_0, f"{title}:\t")
    keys = sorted(k for k in (annotations or {}) if k not in _SKIP_ANNOTATIONS)
    if not keys:
        w.line("<none>")
        return
    indent = "\t"
    for i, key in enumerate(keys):
        if i:
            w.write(LEVEL_0, indent)
        value = s((annotations or {})[key]).removesuffix("\n")
        if len(value) + len(key) + 2 > _MAX_ANNOTATION_LEN or "\n" in value:
            w.write(LEVEL_0, f"{key}:\n")
            for part in value.split("\n"):
                short = part if len(part) <= _MAX_ANNOTATION_LEN - 2 else part[:_MAX_ANNOTATION_LEN - 2] + "..."
                w.write(LEVEL_0, f"{indent}  {short}\n")
        else:
            w.write(LEVEL_0, f"{key}: {value}\n")


def taint_string(t: Mapping[str, Any]) -> str:
    """Taint.ToString: key=value:effect or key:effect."""
    key, value, effect = s(t.get("key")), s(t.get("value")), s(t.get("effect"))
    return f"{key}={value}:{effect}" if value else f"{key}:{effect}"


def taints_multiline(w: PrefixWriter, title: str, taints: list[Any]) -> None:
    w.write(LEVEL_0, f"{title}:\t")
    items = sorted((t for t in taints if isinstance(t, Mapping)),
                   key=lambda t: f"{s(t.get('effect'))},{s(t.get('key'))}")
    if not items:
        w.line("<none>")
        return
    for i, t in enumerate(items):
        if i:
            w.write(LEVEL_0, "\t")
        w.write(LEVEL_0, taint_string(t) + "\n")


def tolerations_multiline(w: PrefixWriter, title: str, tolerations: list[Any], initial_indent: str = "") -> None:
    w.write(LEVEL_0, f"{initial_indent}{title}:\t")
    items = sorted((t for t in tolerations if isinstance(t, Mapping)), key=lambda t: s(t.get("key")))
    if not items:
        w.line("<none>")
        return
    for i, t in enumerate(items):
        if i:
            w.write(LEVEL_0, initial_indent)
            w.write(LEVEL_0, "\t")
        text = s(t.get("key"))
        if t.get("value"):
            text += f"={s(t.get('value'))}"
        if t.get("effect"):
            text += f":{s(t.get('effect'))}"
        if t.get("operator") == "Exists" and not t.get("value"):
            text += " op=Exists" if (t.get("key") or t.get("effect")) else "op=Exists"
        if t.get("tolerationSeconds") is not None:
            text += f" for {s(t.get('tolerationSeconds'))}s"
        w.write(LEVEL_0, text + "\n")


def _event_time(e: Mapping[str, Any]) -> float:
    t = parse_time(e.get("lastTimestamp")) or parse_time(e.get("eventTime")) or parse_time(e.get("firstTimestamp"))
    return t.timestamp() if t is not None else 0.0


def events_section(w: PrefixWriter, events: list[Obj] | None, now: float | None = None) -> None:
    """DescribeEvents: the Events table at the bottom (or `Events: <none>`)."""
    if events is None:
        return
    if not events:
        w.write(LEVEL_0, "Events:\t<none>\n")
        return
    w.flush()
    w.write(LEVEL_0, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n")
    w.write(LEVEL_1, "----\t------\t----\t----\t-------\n")
    for e in sorted(events, key=_event_time):
        first = since(e.get("eventTime"), now) if e.get("eventTime") else since(e.get("firstTimestamp"), now)
        series = e.get("series") if isinstance(e.get("series"), Mapping) else None
        raw_count = e.get("count")
        count = raw_count if isinstance(raw_count, int) else 0
        if series:
            interval = f"{since(series.get('lastObservedTime'), now)} (x{s(series.get('count'))} over {first})"
        elif count > 1:
            interval = f"{since(e.get('lastTimestamp'), now)} (x{count} over {first})"
        else:
            interval = first
        source = s(d(e, "source", "component")) or s(e.get("reportingComponent")) or s(e.get("reportingController"))
        w.write(LEVEL_1, f"{s(e.get('type'))}\t{s(e.get('reason'))}\t{interval}\t{source}\t"
                         f"{s(e.get('message')).strip()}\n")


def controller_of(obj: Obj) -> str:
    """printController: `ReplicaSet/web-5d4f` of the controlling owner, or ""."""
    for ref in dl(obj, "metadata", "ownerReferences"):
        if isinstance(ref, Mapping) and ref.get("controller"):
            return f"{s(ref.get('kind'))}/{s(ref.get('name'))}"
    return ""
