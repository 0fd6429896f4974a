"""`mkubectl expose`: a Service for a deployment, replicaset, pod or service, with the
selector, ports, protocols and labels taken from the object as kubectl does."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from mkube.api.kinds import ResourceType
from mkube.kubectl import fetch, resources
from mkube.kubectl.commands.common import done_line, filename_option, recursive_option, resolve_refs
from mkube.kubectl.context import Kube
from mkube.kubectl.errors import CommandError
from mkube.kubectl.output import Out
from mkube.kubectl.printers import ObjectPrinter, dry_run_view, name_of, parse_output

Obj = dict[str, Any]
_EXPOSABLE = ("Pod", "Service", "ReplicaSet", "Deployment")
_NO_SELECTOR = "couldn't retrieve selectors via --selector flag or introspection: "


def selector_for(rt: ResourceType, obj: Obj) -> dict[str, str]:
    """MapBasedSelectorForObject. Raises CommandError as kubectl does."""
    spec = obj.get("spec") or {}
    if rt.kind == "Pod":
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if not labels:
            raise CommandError(f"{_NO_SELECTOR}the pod has no labels and cannot be exposed")
        return dict(labels)
    if rt.kind == "Service":
        if not spec.get("selector"):
            raise CommandError(f"{_NO_SELECTOR}the service has no pod selector set")
        return dict(spec["selector"])
    selector = spec.get("selector") or {}
    if selector.get("matchExpressions"):
        raise CommandError(f'{_NO_SELECTOR}couldn\'t convert expressions - "{selector["matchExpressions"]}" to map-based '
                           f"selector format")
    return dict(selector.get("matchLabels") or {})


def _container_ports(rt: ResourceType, obj: Obj) -> list[Mapping[str, Any]]:
    spec = obj.get("spec") or {}
    if rt.kind == "Pod":
        containers = spec.get("containers") or []
    else:
        containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    return [p for c in containers if isinstance(c, Mapping) for p in c.get("ports") or [] if isinstance(p, Mapping)]


def ports_for(rt: ResourceType, obj: Obj) -> list[tuple[str, str]]:
    """PortsForObject and ProtocolsForObject: [(port, protocol)] in the object's order."""
    if rt.kind == "Service":
        return [(str(p.get("port")), str(p.get("protocol") or "")) for p in (obj.get("spec") or {}).get("ports") or []
                if isinstance(p, Mapping)]
    return [(str(p.get("containerPort")), str(p.get("protocol") or "")) for p in _container_ports(rt, obj)]


def build_service(rt: ResourceType, obj: Obj, *, name: str | None, port: str | None, target_port: str | None,
                  protocol: str | None, type_: str | None, selector: str | None,
                  labels: str | None, cluster_ip: str | None, external_ip: str | None) -> Obj:
    """The Service `kubectl expose` would create for `obj`."""
    meta = obj.get("metadata") or {}
    svc_name = (name or str(meta.get("name") or ""))[:63]
    if selector:
        sel = dict(part.split("=", 1) for part in selector.split(",") if "=" in part)
    else:
        sel = selector_for(rt, obj)
    known = ports_for(rt, obj)
    protocols = {p: proto for p, proto in known if proto}
    if port:
        ports = [p.strip() for p in port.split(",") if p.strip()]
    else:
        ports = [p for p, _ in known]
        if not ports and cluster_ip != "None":
            raise CommandError("couldn't find port via --port flag or introspection")
    service_ports: list[Obj] = []
    for i, p in enumerate(ports):
        try:
            number = int(p)
        except ValueError:
            raise CommandError(f'invalid port "{p}": must be a number') from None
        sp: Obj = {"port": number, "protocol": protocol or protocols.get(p) or "TCP"}
        if len(ports) > 1:
            sp["name"] = f"port-{i + 1}"
        if target_port:
            sp["targetPort"] = int(target_port) if target_port.isdigit() else target_port
        else:
            sp["targetPort"] = number
        service_ports.append(sp)
    if labels:
        svc_labels = dict(part.split("=", 1) for part in labels.split(",") if "=" in part)
    else:
        svc_labels = dict(meta.get("labels") or {})
    spec: Obj = {"selector": sel, "ports": service_ports}
    if type_:
        spec["type"] = type_
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
    if external_ip:
        spec["externalIPs"] = [external_ip]
    svc_meta: Obj = {"name": svc_name}
    if svc_labels:
        svc_meta["labels"] = svc_labels
    return {"apiVersion": "v1", "kind": "Service", "metadata": svc_meta, "spec": spec}


@click.command("expose")
@click.argument("args", nargs=-1)
@filename_option
@recursive_option
@click.option("--port", help="The port(s) the service serves (comma-separated).")
@click.option("--target-port", help="The container port (number or name) traffic goes to.")
@click.option("--protocol", help="TCP, UDP or SCTP (default: the object's, else TCP).")
@click.option("--type", "type_", type=click.Choice(["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"]),
              help="The service type.")
@click.option("--name", help="The service name (default: the object's name).")
@click.option("--selector", help="Pod selector k=v,k2=v2 (default: the object's).")
@click.option("-l", "--labels", help="Labels of the service (default: the object's).")
@click.option("--cluster-ip", help="A ClusterIP to ask for ('None': headless).")
@click.option("--external-ip", help="An external IP the service also accepts traffic for.")
@click.option("--dry-run", type=click.Choice(["none", "client", "server"]), default="none")
@click.option("-o", "--output", help="name|yaml|json|jsonpath=...")
@click.pass_obj
def expose_command(kube: Kube, args: tuple[str, ...], filename: tuple[str, ...], recursive: bool,
                   port: str | None, target_port: str | None, protocol: str | None, type_: str | None,
                   name: str | None, selector: str | None, labels: str | None, cluster_ip: str | None,
                   external_ip: str | None, dry_run: str, output: str | None) -> None:
    """Expose a deployment, replicaset, pod or service as a new Service."""
    refs = resolve_refs(kube, args, filename, recursive, verb="expose")
    printer = ObjectPrinter(parse_output(output), name_of) if output else None
    out = Out()
    for ref in refs:
        if ref.rt.kind not in _EXPOSABLE:
            raise CommandError(f"cannot expose a {ref.rt.kind}")
        obj = fetch.get_object(kube.client, ref.rt, ref.name, ref.namespace)
        svc = build_service(ref.rt, obj, name=name, port=port, target_port=target_port, protocol=protocol,
                            type_=type_, selector=selector, labels=labels, cluster_ip=cluster_ip,
                            external_ip=external_ip)
        services = resources.resolve_type("services")
        ns = ref.namespace or kube.namespace
        if dry_run == "client":
            view = {**dry_run_view(svc), "status": {"loadBalancer": {}}}
            out.write(printer.render(view) if printer else done_line(services, svc["metadata"]["name"],
                                                                      "exposed (dry run)") + "\n")
            continue
        svc["metadata"]["namespace"] = ns
        created = kube.client.create_raw(services, svc, ns)
        if printer is not None:
            out.write(printer.render(fetch.typed(services, created)))
        else:
            out.line(done_line(services, created["metadata"]["name"], "exposed"))
