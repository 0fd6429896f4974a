"""describe for namespaces, configmaps, secrets, and every other kind (the generic
describer: the object's fields as indented "Smart Label: value" lines)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from mkube.kubectl.describe.writer import (
    LEVEL_0,
    LEVEL_1,
    PrefixWriter,
    annotations_multiline,
    dl,
    dm,
    events_section,
    labels_multiline,
    rfc1123z,
    s,
)

Obj = dict[str, Any]
_ACRONYMS = {"API", "URL", "UID", "OSB", "GUID"}


def camel_split(text: str) -> list[str]:
    """fatih/camelcase.Split: "creationTimestamp" -> ["creation", "Timestamp"], "podIP" -> ["pod", "IP"]."""
    runs: list[list[str]] = []
    last = 0
    for ch in text:
        cls = 1 if ch.islower() else 2 if ch.isupper() else 3 if ch.isdigit() else 4
        if cls == last:
            runs[-1].append(ch)
        else:
            runs.append([ch])
        last = cls
    for i in range(len(runs) - 1):
        if runs[i] and runs[i][0].isupper() and runs[i + 1] and runs[i + 1][0].islower():
            runs[i + 1].insert(0, runs[i].pop())
    return ["".join(r) for r in runs if r]


def smart_label(field: str) -> str:
    """smartLabelFor: "resourceVersion" -> "Resource Version" (fields with odd runes kept)."""
    if any(not (ch.isalpha() or ch == "-") for ch in field):
        return field
    parts = []
    for part in camel_split(field):
        if part == "_":
            continue
        parts.append(part.upper() if part.upper() in _ACRONYMS else part[:1].upper() + part[1:])
    return " ".join(parts)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return s(v)


def unstructured(w: PrefixWriter, level: int, content: Mapping[str, Any], prefix: str, skip: set[str]) -> None:
    """printUnstructuredContent: sorted fields, maps and lists indented below their label."""
    for key in sorted(content):
        value = content[key]
        path = f"{prefix}.{key}"
        if path in skip:
            continue
        if isinstance(value, Mapping):
            w.write(level, f"{smart_label(key)}:\n")
            unstructured(w, level + 1, value, path, skip)
        elif isinstance(value, list):
            w.write(level, f"{smart_label(key)}:\n")
            for child in value:
                if isinstance(child, Mapping):
                    unstructured(w, level + 1, child, path, skip)
                else:
                    w.write(level + 1, f"{_value(child)}\n")
        else:
            w.write(level, f"{smart_label(key)}:\t{_value(value)}\n")


def describe_generic(obj: Obj, events: list[Obj] | None) -> str:
    w = PrefixWriter()
    meta = dm(obj, "metadata")
    w.write(LEVEL_0, f"Name:\t{s(meta.get('name'))}\n")
    w.write(LEVEL_0, f"Namespace:\t{s(meta.get('namespace'))}\n")
    labels_multiline(w, "Labels", dm(meta, "labels"))
    annotations_multiline(w, "Annotations", dm(meta, "annotations"))
    unstructured(w, LEVEL_0, obj, "", {".metadata.managedFields", ".metadata.name", ".metadata.namespace",
                                       ".metadata.labels", ".metadata.annotations"})
    events_section(w, events)
    return w.text()


def describe_namespace(ns: Obj) -> str:
    w = PrefixWriter()
    meta = dm(ns, "metadata")
    w.write(LEVEL_0, f"Name:\t{s(meta.get('name'))}\n")
    labels_multiline(w, "Labels", dm(meta, "labels"))
    annotations_multiline(w, "Annotations", dm(meta, "annotations"))
    w.write(LEVEL_0, f"Status:\t{s(dm(ns, 'status').get('phase'))}\n")
    conditions = [c for c in dl(ns, "status", "conditions") if isinstance(c, Mapping)]
    if conditions:
        w.write(LEVEL_0, "Conditions:\n")
        w.write(LEVEL_1, "Type\tStatus\tLastTransitionTime\tReason\tMessage\n")
        w.write(LEVEL_1, "----\t------\t------------------\t------\t-------\n")
        for c in conditions:
            w.write(LEVEL_1, f"{s(c.get('type'))}\t{s(c.get('status'))}\t{rfc1123z(c.get('lastTransitionTime'))}\t"
                             f"{s(c.get('reason'))}\t{s(c.get('message'))}\n")
    # kubectl adds quota and limit-range sections; mkube serves neither, and kubectl leaves
    # them out when the server does not know those resources.
    return w.text()


def describe_configmap(cm: Obj, events: list[Obj] | None) -> str:
    w = PrefixWriter()
    meta = dm(cm, "metadata")
    w.write(LEVEL_0, f"Name:\t{s(meta.get('name'))}\n")
    w.write(LEVEL_0, f"Namespace:\t{s(meta.get('namespace'))}\n")
    labels_multiline(w, "Labels", dm(meta, "labels"))
    annotations_multiline(w, "Annotations", dm(meta, "annotations"))
    w.write(LEVEL_0, "\nData\n====\n")
    data = dm(cm, "data")
    for key in sorted(data):
        w.write(LEVEL_0, f"{key}:\n----\n")
        w.write(LEVEL_0, f"{s(data[key])}\n")
        w.write(LEVEL_0, "\n")
    w.write(LEVEL_0, "\nBinaryData\n====\n")
    binary = dm(cm, "binaryData")
    for key in sorted(binary):
        w.write(LEVEL_0, f"{key}: {len(_decode(binary[key]))} bytes\n")
    w.write(LEVEL_0, "\n")
    events_section(w, events)
    return w.text()


def _decode(value: Any) -> bytes:
    try:
        return base64.b64decode(s(value), validate=False)
    except (binascii.Error, ValueError):
        return s(value).encode()


def describe_secret(secret: Obj) -> str:
    w = PrefixWriter()
    meta = dm(secret, "metadata")
    w.write(LEVEL_0, f"Name:\t{s(meta.get('name'))}\n")
    w.write(LEVEL_0, f"Namespace:\t{s(meta.get('namespace'))}\n")
    labels_multiline(w, "Labels", dm(meta, "labels"))
    annotations_multiline(w, "Annotations", dm(meta, "annotations"))
    w.write(LEVEL_0, f"\nType:\t{s(secret.get('type'))}\n")
    w.write(LEVEL_0, "\nData\n====\n")
    data = dict(dm(secret, "data"))
    for key, value in dm(secret, "stringData").items():
        data.setdefault(key, base64.b64encode(s(value).encode()).decode())
    for key in sorted(data):
        raw = _decode(data[key])
        if key == "token" and secret.get("type") == "kubernetes.io/service-account-token":
            w.write(LEVEL_0, f"{key}:\t{raw.decode(errors='replace')}\n")
        else:
            w.write(LEVEL_0, f"{key}:\t{len(raw)} bytes\n")
    return w.text()
