"""Rules for metadata, labels, annotations and label selectors (apimachinery validation)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mkube.api import names
from mkube.api.fielderrors import Errs, Obj, as_dict, as_list, dict_items
from mkube.api.kinds import ResourceType

_TOTAL_ANNOTATION_SIZE = 256 * 1024


# ---------------------------------------------------------------- metadata

def _name_checker(rt: ResourceType) -> Callable[[str], list[str]]:
    if rt.kind == "Namespace":
        return names.is_dns1123_label
    if rt.kind == "Service":
        return names.is_dns1035_label
    return names.is_dns1123_subdomain


def validate_labels(labels: Any, path: str, errs: Errs) -> None:
    """Label keys are qualified names, values valid label values; errors name `path`."""
    for k, v in as_dict(labels).items():
        for m in names.is_qualified_name(k):
            errs.invalid(path, k, m)
        if isinstance(v, str):
            for m in names.is_label_value(v):
                errs.invalid(path, v, m)


def validate_annotations(ann: Any, path: str, errs: Errs) -> None:
    """Annotation keys are qualified names; all annotations together fit in 256 KiB."""
    total = 0
    for k, v in as_dict(ann).items():
        for m in names.is_qualified_name(k.lower()):
            errs.invalid(path, k, m)
        total += len(k) + (len(v) if isinstance(v, str) else 0)
    if total > _TOTAL_ANNOTATION_SIZE:
        errs.too_long(path, _TOTAL_ANNOTATION_SIZE)


def _mask_trailing_dash(name: str) -> str:
    return name[:-1] + "a" if len(name) > 1 and name.endswith("-") else name


def validate_meta(rt: ResourceType, md: Obj, errs: Errs, path: str = "metadata") -> None:
    """ObjectMeta rules: name per kind (DNS-1123 subdomain, label for namespaces, DNS-1035 for
    services), generateName, namespace, labels, annotations, ownerReferences, finalizers."""
    check = _name_checker(rt)
    name, generate = md.get("name"), md.get("generateName")
    if generate:
        for m in check(_mask_trailing_dash(generate)):
            errs.invalid(f"{path}.generateName", generate, m)
    if not name:
        if not generate:
            errs.required(f"{path}.name", "name or generateName is required")
    else:
        for m in check(name):
            errs.invalid(f"{path}.name", name, m)
    ns = md.get("namespace")
    if rt.namespaced and ns:
        for m in names.is_dns1123_label(ns):
            errs.invalid(f"{path}.namespace", ns, m)
    elif not rt.namespaced and ns:
        errs.forbidden(f"{path}.namespace", "not allowed on this type")
    validate_labels(md.get("labels"), f"{path}.labels", errs)
    validate_annotations(md.get("annotations"), f"{path}.annotations", errs)
    controllers = []
    for i, ref in dict_items(md.get("ownerReferences")):
        rp = f"{path}.ownerReferences[{i}]"
        for fld in ("apiVersion", "kind", "name"):
            if not ref.get(fld):
                errs.invalid(f"{rp}.{fld}", ref.get(fld, ""), f"{fld} must not be empty")
        if not ref.get("uid"):
            errs.invalid(f"{rp}.uid", ref.get("uid", ""), "uid must not be empty")
        if ref.get("controller") is True:
            controllers.append(f"{ref.get('kind')}/{ref.get('name')}")
    if len(controllers) > 1:
        errs.invalid(f"{path}.ownerReferences", md.get("ownerReferences"),
                     "Only one reference can have Controller set to true. Found \"true\" in references for "
                     + " and ".join(controllers))
    for i, f in enumerate(as_list(md.get("finalizers"))):
        if isinstance(f, str):
            for m in names.is_qualified_name(f):
                errs.invalid(f"{path}.finalizers[{i}]", f, m)
    errs.nonnegative(f"{path}.deletionGracePeriodSeconds", md.get("deletionGracePeriodSeconds"))


def validate_label_selector(sel: Any, path: str, errs: Errs) -> None:
    """A LabelSelector: valid keys/values and operators with the values each operator needs."""
    s = as_dict(sel)
    validate_labels(s.get("matchLabels"), f"{path}.matchLabels", errs)
    for i, e in dict_items(s.get("matchExpressions")):
        ep = f"{path}.matchExpressions[{i}]"
        op, values = e.get("operator"), as_list(e.get("values"))
        if op in ("In", "NotIn"):
            if not values:
                errs.required(f"{ep}.values", "must be specified when `operator` is 'In' or 'NotIn'")
        elif op in ("Exists", "DoesNotExist"):
            if values:
                errs.forbidden(f"{ep}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
        else:
            errs.invalid(f"{ep}.operator", op, "not a valid selector operator")
        key = e.get("key", "")
        for m in names.is_qualified_name(key):
            errs.invalid(f"{ep}.key", key, m)
        for j, v in enumerate(values):
            if isinstance(v, str):
                for m in names.is_label_value(v):
                    errs.invalid(f"{ep}.values[{j}]", v, m)

