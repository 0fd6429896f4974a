"""describe for services and endpoints."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mkube.api.selectors import format_labels
from mkube.kubectl.describe.writer import (
    LEVEL_0,
    LEVEL_1,
    LEVEL_2,
    PrefixWriter,
    annotations_multiline,
    dl,
    dm,
    events_section,
    labels_multiline,
    s,
)

Obj = dict[str, Any]


def format_endpoints(endpoints: Obj | None, port_name: str | None) -> str:
    """formatEndpoints: up to three `ip:port`, then `+ N more...`; `<none>` without any."""
    subsets = [ss for ss in dl(endpoints, "subsets") if isinstance(ss, Mapping)] if endpoints else []
    if not subsets:
        return "<none>"
    shown: list[str] = []
    count = 0
    for ss in subsets:
        addresses = [a for a in dl(ss, "addresses") if isinstance(a, Mapping)]
        ports = [p for p in dl(ss, "ports") if isinstance(p, Mapping)]
        if not ports:
            for a in addresses:
                if len(shown) < 3:
                    shown.append(s(a.get("ip")))
                count += 1
            continue
        for p in ports:
            if port_name is not None and s(p.get("name")) != port_name:
                continue
            for a in addresses:
                ip = s(a.get("ip"))
                if len(shown) < 3:
                    shown.append(f"[{ip}]:{s(p.get('port'))}" if ":" in ip else f"{ip}:{s(p.get('port'))}")
                count += 1
    text = ",".join(shown)
    return f"{text} + {count - 3} more..." if count > 3 else text


def describe_service(svc: Obj, endpoints: Obj | None, events: list[Obj] | None) -> str:
    w = PrefixWriter()
    meta, spec = dm(svc, "metadata"), dm(svc, "spec")
    w.write(LEVEL_0, f"Name:\t{s(meta.get('name'))}\n")
    w.write(LEVEL_0, f"Namespace:\t{s(meta.get('namespace'))}\n")
    labels_multiline(w, "Labels", dm(meta, "labels"))
    annotations_multiline(w, "Annotations", dm(meta, "annotations"))
    w.write(LEVEL_0, f"Selector:\t{format_labels(dm(spec, 'selector')) if spec.get('selector') else '<none>'}\n")
    w.write(LEVEL_0, f"Type:\t{s(spec.get('type'))}\n")
    if spec.get("ipFamilyPolicy"):
        w.write(LEVEL_0, f"IP Family Policy:\t{s(spec.get('ipFamilyPolicy'))}\n")
    families = [s(f) for f in dl(spec, "ipFamilies")]
    w.write(LEVEL_0, f"IP Families:\t{','.join(families) if families else '<none>'}\n")
    w.write(LEVEL_0, f"IP:\t{s(spec.get('clusterIP'))}\n")
    ips = [s(i) for i in dl(spec, "clusterIPs")]
    w.write(LEVEL_0, f"IPs:\t{','.join(ips) if ips else '<none>'}\n")
    if spec.get("externalIPs"):
        w.write(LEVEL_0, f"External IPs:\t{','.join(s(i) for i in dl(spec, 'externalIPs'))}\n")
    if spec.get("loadBalancerIP"):
        w.write(LEVEL_0, f"Desired LoadBalancer IP:\t{s(spec.get('loadBalancerIP'))}\n")
    if spec.get("externalName"):
        w.write(LEVEL_0, f"External Name:\t{s(spec.get('externalName'))}\n")
    ingress = [i for i in dl(svc, "status", "loadBalancer", "ingress") if isinstance(i, Mapping)]
    if ingress:
        w.write(LEVEL_0, f"LoadBalancer Ingress:\t{', '.join(s(i.get('ip') or i.get('hostname')) for i in ingress)}\n")
    for p in dl(spec, "ports"):
        if not isinstance(p, Mapping):
            continue
        name = s(p.get("name")) or "<unset>"
        proto = s(p.get("protocol"))
        w.write(LEVEL_0, f"Port:\t{name}\t{s(p.get('port'))}/{proto}\n")
        target = p.get("targetPort")
        w.write(LEVEL_0, f"TargetPort:\t{s(target) if target is not None else '0'}/{proto}\n")
        if p.get("nodePort"):
            w.write(LEVEL_0, f"NodePort:\t{name}\t{s(p.get('nodePort'))}/{proto}\n")
        w.write(LEVEL_0, f"Endpoints:\t{format_endpoints(endpoints, s(p.get('name')))}\n")
    w.write(LEVEL_0, f"Session Affinity:\t{s(spec.get('sessionAffinity'))}\n")
    if spec.get("externalTrafficPolicy"):
        w.write(LEVEL_0, f"External Traffic Policy:\t{s(spec.get('externalTrafficPolicy'))}\n")
    if spec.get("internalTrafficPolicy"):
        w.write(LEVEL_0, f"Internal Traffic Policy:\t{s(spec.get('internalTrafficPolicy'))}\n")
    if spec.get("healthCheckNodePort"):
        w.write(LEVEL_0, f"HealthCheck NodePort:\t{s(spec.get('healthCheckNodePort'))}\n")
    events_section(w, events)
    return w.text()


def describe_endpoints(ep: Obj, events: list[Obj] | None) -> str:
    w = PrefixWriter()
    meta = dm(ep, "metadata")
    w.write(LEVEL_0, f"Name:\t{s(meta.get('name'))}\n")
    w.write(LEVEL_0, f"Namespace:\t{s(meta.get('namespace'))}\n")
    labels_multiline(w, "Labels", dm(meta, "labels"))
    annotations_multiline(w, "Annotations", dm(meta, "annotations"))
    w.write(LEVEL_0, "Subsets:\n")
    for ss in dl(ep, "subsets"):
        if not isinstance(ss, Mapping):
            continue
        ready = ",".join(s(a.get("ip")) for a in dl(ss, "addresses") if isinstance(a, Mapping))
        not_ready = ",".join(s(a.get("ip")) for a in dl(ss, "notReadyAddresses") if isinstance(a, Mapping))
        w.write(LEVEL_1, f"Addresses:\t{ready or '<none>'}\n")
        w.write(LEVEL_1, f"NotReadyAddresses:\t{not_ready or '<none>'}\n")
        ports = [p for p in dl(ss, "ports") if isinstance(p, Mapping)]
        if ports:
            w.write(LEVEL_1, "Ports:\n")
            w.write(LEVEL_2, "Name\tPort\tProtocol\n")
            w.write(LEVEL_2, "----\t----\t--------\n")
            for p in ports:
                w.write(LEVEL_2, f"{s(p.get('name')) or '<unset>'}\t{s(p.get('port'))}\t{s(p.get('protocol'))}\n")
        w.write(LEVEL_0, "\n")
    events_section(w, events)
    return w.text()
