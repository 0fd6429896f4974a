"""Service environment variables (Docker links style), as the kubelet injects them.

For every Service with a cluster IP in the pod's namespace (when
`enableServiceLinks` is true, the default) and for the `kubernetes` Service of the
`default` namespace (always), a container gets:

    REDIS_MASTER_SERVICE_HOST=10.0.0.11
    REDIS_MASTER_SERVICE_PORT=6379
    REDIS_MASTER_SERVICE_PORT_<PORTNAME>=6379        (named ports)
    REDIS_MASTER_PORT=tcp://10.0.0.11:6379
    REDIS_MASTER_PORT_6379_TCP=tcp://10.0.0.11:6379
    REDIS_MASTER_PORT_6379_TCP_PROTO=tcp
    REDIS_MASTER_PORT_6379_TCP_PORT=6379
    REDIS_MASTER_PORT_6379_TCP_ADDR=10.0.0.11

They are the base of the environment: the container's own env and envFrom win.
"""

from __future__ import annotations

from collections.abc import Iterable

from mkube.api.types import Pod, Service

MASTER_SERVICE = ("default", "kubernetes")


def _env_name(name: str) -> str:
    return name.upper().replace("-", "_")


def _has_cluster_ip(svc: Service) -> bool:
    ip = svc.spec.cluster_ip
    return bool(ip) and ip != "None"


def service_env(svc: Service) -> dict[str, str]:
    """The variables of one Service (empty if it has no cluster IP or no ports)."""
    if not _has_cluster_ip(svc) or not svc.spec.ports:
        return {}
    ip = svc.spec.cluster_ip or ""
    prefix = _env_name(svc.metadata.name or "")
    env: dict[str, str] = {f"{prefix}_SERVICE_HOST": ip}
    first = svc.spec.ports[0]
    env[f"{prefix}_SERVICE_PORT"] = str(first.port)
    for p in svc.spec.ports:
        if p.name:
            env[f"{prefix}_SERVICE_PORT_{_env_name(p.name)}"] = str(p.port)
    env[f"{prefix}_PORT"] = f"{(first.protocol or 'TCP').lower()}://{ip}:{first.port}"
    for p in svc.spec.ports:
        proto = (p.protocol or "TCP").upper()
        base = f"{prefix}_PORT_{p.port}_{proto}"
        env[base] = f"{proto.lower()}://{ip}:{p.port}"
        env[f"{base}_PROTO"] = proto.lower()
        env[f"{base}_PORT"] = str(p.port)
        env[f"{base}_ADDR"] = ip
    return env


def pod_service_env(pod: Pod, services: Iterable[Service]) -> dict[str, str]:
    """The service variables for `pod` from `services` (any namespaces; filtered here).

    Services are applied in name order so that the result is deterministic."""
    services = list(services)
    ns = pod.metadata.namespace or "default"
    links = pod.spec.enable_service_links is not False
    chosen: dict[str, Service] = {}
    for svc in services:
        sns, name = svc.metadata.namespace or "default", svc.metadata.name or ""
        if not _has_cluster_ip(svc):
            continue
        if links and sns == ns:
            chosen[name] = svc
    for svc in services:
        if (svc.metadata.namespace or "default", svc.metadata.name) == MASTER_SERVICE and _has_cluster_ip(svc):
            chosen.setdefault(MASTER_SERVICE[1], svc)
    env: dict[str, str] = {}
    for name in sorted(chosen):
        env.update(service_env(chosen[name]))
    return env
