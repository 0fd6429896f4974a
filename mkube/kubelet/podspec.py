"""Pod spec -> runtime configs: the only place that maps API objects to runtime data.

- `container_hash(container)`: a stable hash of a container's spec; recorded on the
  container, so a changed spec is seen as "recreate" by the planner.
- `sandbox_config(pod)`: every declared container port is published (ephemeral host port
  unless hostPort is set), because other nodes reach a pod through its node.
- `container_config(pod, container, ...)`: env (values, fieldRef, resourceFieldRef,
  configMap/secret refs through a lookup callback), `$(VAR)` expansion in command, args
  and env, resources as Docker limits, volume mounts onto host paths the caller prepared.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from mkube.api.quantity import bytes_, cpu_millis
from mkube.api.types import Container, EnvVar, Pod
from mkube.kubelet.runtime.base import ContainerConfig, Mount, PortMapping, SandboxConfig

LABEL_GRACE = "io.mkube.pod.termination-grace-period"
DEFAULT_GRACE_S = 30
MIN_CPU_SHARES = 2  # the kernel's minimum, as in the kubelet

# (kind "configmap"|"secret", namespace, name) -> its data (secrets decoded), None if absent.
Lookup = Callable[[str, str, str], Mapping[str, str] | None]


class ConfigError(Exception):
    """The container cannot be configured (missing configMap key, unknown volume...).
    `reason` follows the kubelet ("CreateContainerConfigError")."""

    reason = "CreateContainerConfigError"


def as_pod(pod: Pod | Mapping[str, Any]) -> Pod:
    return pod if isinstance(pod, Pod) else Pod.from_dict(dict(pod))


def container_hash(container: Container) -> str:
    """16 hex digits over the container's canonical wire form: equal specs, equal hash."""
    body = json.dumps(container.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def grace_seconds(pod: Pod) -> int:
    """The pod's graceful-stop budget: the deletion grace period once deleted, else the spec's."""
    if pod.metadata.deletion_grace_period_seconds is not None:
        return max(0, pod.metadata.deletion_grace_period_seconds)
    g = pod.spec.termination_grace_period_seconds
    return DEFAULT_GRACE_S if g is None else max(0, g)


def sandbox_config(pod: Pod, attempt: int = 0, dns_servers: list[str] | None = None) -> SandboxConfig:
    spec, meta = pod.spec, pod.metadata
    ports: list[PortMapping] = []
    seen: set[tuple[int, str]] = set()
    for c in list(spec.init_containers or []) + list(spec.containers):
        for p in c.ports or []:
            proto = (p.protocol or "TCP").upper()
            if (p.container_port, proto) in seen:
                continue
            seen.add((p.container_port, proto))
            ports.append(PortMapping(p.container_port, proto, p.host_port or 0, p.host_ip or ""))
    extra_hosts = []
    for alias in (spec.model_extra or {}).get("hostAliases") or []:
        for hostname in alias.get("hostnames") or []:
            extra_hosts.append((hostname, alias.get("ip", "")))
    return SandboxConfig(
        pod_uid=meta.uid or "", namespace=meta.namespace or "default", name=meta.name or "",
        hostname=spec.hostname or meta.name or "", labels={}, ports=ports,
        dns_servers=list(dns_servers or []), extra_hosts=extra_hosts,
        host_network=bool(spec.host_network), attempt=attempt,
    )


_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes `$(VAR)` expansion: known names are replaced, unknown kept, `$$` -> `$`."""
    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env[name] if name in env else m.group(0)
    return _VAR_REF.sub(sub, text)


def _field_ref(pod: Pod, path: str, pod_ip: str, host_ip: str) -> str:
    meta = pod.metadata
    if path.startswith("metadata.labels['") or path.startswith("metadata.annotations['"):
        key = path.split("['", 1)[1].rstrip("']")
        src = meta.labels if path.startswith("metadata.labels") else meta.annotations
        return (src or {}).get(key, "")
    values = {
        "metadata.name": meta.name, "metadata.namespace": meta.namespace, "metadata.uid": meta.uid,
        "spec.nodeName": pod.spec.node_name, "spec.serviceAccountName": pod.spec.service_account_name,
        "status.podIP": pod_ip, "status.hostIP": host_ip, "status.podIPs": pod_ip, "status.hostIPs": host_ip,
    }
    if path not in values:
        raise ConfigError(f"unsupported fieldRef {path!r}")
    return values[path] or ""


def _resource_ref(container: Container, resource: str, divisor: Any, node_cpu_millis: int,
                  node_memory: int) -> str:
    res = container.resources
    kind, _, name = resource.partition(".")
    source = (res.limits if kind == "limits" else res.requests) if res else None
    q = (source or {}).get(name)
    if name == "cpu":
        millis = cpu_millis(q) if q is not None else (node_cpu_millis if kind == "limits" else 0)
        div = cpu_millis(divisor) if divisor is not None else 1000
        return str(-(-millis // max(1, div)))
    if name in ("memory", "ephemeral-storage"):
        n = bytes_(q) if q is not None else (node_memory if kind == "limits" else 0)
        div = bytes_(divisor) if divisor is not None else 1
        return str(-(-n // max(1, div)))
    raise ConfigError(f"unsupported resourceFieldRef {resource!r}")


def _env_value(pod: Pod, container: Container, e: EnvVar, env: Mapping[str, str], lookup: Lookup | None,
               pod_ip: str, host_ip: str, node: tuple[int, int]) -> str | None:
    if e.value_from is None:
        return expand(e.value or "", env)
    vf = e.value_from
    ns = pod.metadata.namespace or "default"
    if vf.field_ref is not None:
        return _field_ref(pod, vf.field_ref.field_path, pod_ip, host_ip)
    if vf.resource_field_ref is not None:
        return _resource_ref(container, vf.resource_field_ref.resource, vf.resource_field_ref.divisor, *node)
    for kind, ref in (("configmap", vf.config_map_key_ref), ("secret", vf.secret_key_ref)):
        if ref is None:
            continue
        data = lookup(kind, ns, ref.name or "") if lookup else None
        found = None if data is None else data.get(ref.key)
        if found is None and not ref.optional:
            raise ConfigError(f"{kind} {ns}/{ref.name} has no key {ref.key!r} (env {e.name})")
        return found
    return None


def container_env(pod: Pod, container: Container, *, lookup: Lookup | None = None, pod_ip: str = "",
                  host_ip: str = "", node_cpu_millis: int = 0, node_memory: int = 0) -> dict[str, str]:
    """The container's environment, in Kubernetes order: envFrom, then env (later wins)."""
    env: dict[str, str] = {}
    ns = pod.metadata.namespace or "default"
    for src in container.env_from or []:
        for kind, ref in (("configmap", src.config_map_ref), ("secret", src.secret_ref)):
            if ref is None:
                continue
            data = lookup(kind, ns, ref.name or "") if lookup else None
            if data is None:
                if not ref.optional:
                    raise ConfigError(f"{kind} {ns}/{ref.name} not found (envFrom)")
                continue
            for k, v in data.items():
                env[(src.prefix or "") + k] = str(v)
    for e in container.env or []:
        value = _env_value(pod, container, e, env, lookup, pod_ip, host_ip, (node_cpu_millis, node_memory))
        if value is not None:
            env[e.name] = value
    return env


def _user(container: Container, pod: Pod) -> str | None:
    sc = {**(pod.spec.security_context or {}), **(container.security_context or {})}
    uid, gid = sc.get("runAsUser"), sc.get("runAsGroup")
    if uid is None:
        return None
    return f"{uid}:{gid}" if gid is not None else str(uid)


def container_config(pod: Pod, container: Container, *, attempt: int = 0,
                     volume_paths: Mapping[str, str] | None = None, lookup: Lookup | None = None,
                     pod_ip: str = "", host_ip: str = "", node_cpu_millis: int = 0,
                     node_memory: int = 0) -> ContainerConfig:
    """The runtime config of one container. `volume_paths` maps each pod volume name to the
    host path (or Docker volume) the caller prepared. Raises ConfigError."""
    env = container_env(pod, container, lookup=lookup, pod_ip=pod_ip, host_ip=host_ip,
                        node_cpu_millis=node_cpu_millis, node_memory=node_memory)
    mounts = []
    for vm in container.volume_mounts or []:
        base = (volume_paths or {}).get(vm.name)
        if base is None:
            raise ConfigError(f"volume {vm.name!r} is not prepared (mount {vm.mount_path})")
        source = base.rstrip("/") + "/" + vm.sub_path.strip("/") if vm.sub_path else base
        mounts.append(Mount(source, vm.mount_path, bool(vm.read_only)))
    limits = (container.resources.limits if container.resources else None) or {}
    requests = (container.resources.requests if container.resources else None) or {}
    cpu_limit = cpu_millis(limits["cpu"]) if "cpu" in limits else None
    cpu_request = cpu_millis(requests["cpu"]) if "cpu" in requests else cpu_limit
    return ContainerConfig(
        name=container.name,
        image=container.image or "",
        command=[expand(a, env) for a in container.command] if container.command else None,
        args=[expand(a, env) for a in container.args] if container.args else None,
        env=env,
        working_dir=container.working_dir or None,
        labels={LABEL_GRACE: str(grace_seconds(pod))},
        mounts=mounts,
        nano_cpus=cpu_limit * 1_000_000 if cpu_limit else None,
        cpu_shares=max(MIN_CPU_SHARES, cpu_request * 1024 // 1000) if cpu_request is not None else None,
        memory_limit=bytes_(limits["memory"]) if "memory" in limits else None,
        user=_user(container, pod),
        spec_hash=container_hash(container),
        attempt=attempt,
    )
