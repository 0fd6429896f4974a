"""The `kubernetes` Service and the periodic service-allocation jobs of an API server.

Like kube-apiserver: at start (and every `REPAIR_INTERVAL_SECONDS`) the server
- runs the allocation repair pass (services.repair);
- makes sure `default/kubernetes` exists: ClusterIP = the first address of the service
  CIDR (reserved for it), port 443 "https" -> this server's port, no selector;
- makes sure the Endpoints `default/kubernetes` lists this server's address
  (`advertise_address`, else the bind address, else the default route's address when
  bound to all interfaces). On SQLite (one server) it is the only address; several API
  servers sharing PostgreSQL each add theirs (an address that goes away stays listed:
  there is no per-server lease yet).

`install(store, options)` wraps the store (services.AllocatingStore); `start_jobs`
runs the first pass and schedules the rest (APScheduler, coalesce, max_instances=1).
"""

from __future__ import annotations

import copy
import ipaddress
import logging
import socket
from collections.abc import Callable
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from mkube.api.errors import ApiError, is_already_exists, is_conflict, is_not_found
from mkube.api.kinds import ResourceType, by_path
from mkube.apiserver import admission, meta
from mkube.apiserver.options import ApiServerOptions
from mkube.apiserver.services import AllocatingStore, ServiceAllocations, repair
from mkube.apiserver.storage.base import Store

log = logging.getLogger(__name__)

Obj = dict[str, Any]
NAMESPACE, NAME = "default", "kubernetes"
PORT_NAME = "https"
SERVICE_PORT = 443
REPAIR_INTERVAL_SECONDS = 60.0
SERVICES_RT: ResourceType = by_path("", "v1", "services")  # type: ignore[assignment]
ENDPOINTS_RT: ResourceType = by_path("", "v1", "endpoints")  # type: ignore[assignment]


def install(store: Store, options: ApiServerOptions) -> AllocatingStore:
    """`store` with Service allocation on its write path."""
    if isinstance(store, AllocatingStore):
        return store
    allocations = ServiceAllocations(store, options.service_cluster_ip_range, options.service_node_port_range)
    return AllocatingStore(store, allocations)


def advertise_address(options: ApiServerOptions) -> str | None:
    """The IP other components reach this server at (None when unknown)."""
    for candidate in (options.advertise_address, options.bind_address):
        if not candidate:
            continue
        try:
            ip = ipaddress.ip_address(candidate)
        except ValueError:
            continue
        if not ip.is_unspecified:
            return str(ip)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.255", 9))  # selects the default route's source address; sends nothing
            return str(s.getsockname()[0])
    except OSError:
        return "127.0.0.1"


def kubernetes_service(options: ApiServerOptions, cluster_ip: str | None) -> Obj:
    spec: Obj = {"type": "ClusterIP", "sessionAffinity": "None",
                 "ports": [{"name": PORT_NAME, "port": SERVICE_PORT, "protocol": "TCP",
                            "targetPort": options.port}]}
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": NAME, "namespace": NAMESPACE,
                         "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": spec}


def ensure_kubernetes_service(store: AllocatingStore, options: ApiServerOptions) -> None:
    """Create `default/kubernetes` if missing; keep its port pointing at this server."""
    try:
        current = store.get("services", NAMESPACE, NAME)
    except ApiError as err:
        if not is_not_found(err):
            raise
        _create_kubernetes_service(store, options)
        return
    ports = (current.get("spec") or {}).get("ports") or []
    want = kubernetes_service(options, None)["spec"]["ports"]
    if [{k: p.get(k) for k in ("name", "port", "protocol", "targetPort")} for p in ports] != want:
        new = copy.deepcopy(current)
        new["spec"]["ports"] = want
        rv = int(current["metadata"].get("resourceVersion") or 0)
        try:
            store.update("services", NAMESPACE, NAME, new, rv)
        except ApiError as err:
            if not is_conflict(err):
                raise


def _create_kubernetes_service(store: AllocatingStore, options: ApiServerOptions) -> None:
    first = store.allocations.ip_range.first_ip()
    for cluster_ip in (first, None):
        obj = admission.prepare_create(SERVICES_RT, kubernetes_service(options, cluster_ip))
        meta.stamp_new(obj)
        try:
            store.create("services", NAMESPACE, NAME, obj)
            log.info("created service default/kubernetes", extra={"clusterIP": obj["spec"].get("clusterIP")
                                                                 or "(allocated)"})
            return
        except ApiError as err:
            if is_already_exists(err):
                return  # another API server was first
            if err.code != 422 or cluster_ip is None:
                raise
            log.error("the first service IP %s is taken; the kubernetes service gets another one", first)


def ensure_kubernetes_endpoints(store: Store, options: ApiServerOptions) -> None:
    """This server's address in the Endpoints `default/kubernetes` (others' are kept)."""
    address = advertise_address(options)
    if not address:
        return
    port = {"name": PORT_NAME, "port": options.port, "protocol": "TCP"}
    for _ in range(5):
        try:
            current: Obj | None = store.get("endpoints", NAMESPACE, NAME)
        except ApiError as err:
            if not is_not_found(err):
                raise
            current = None
        if current is None:
            body = {"apiVersion": "v1", "kind": "Endpoints",
                    "metadata": {"name": NAME, "namespace": NAMESPACE,
                                 "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
                    "subsets": [{"addresses": [{"ip": address}], "ports": [port]}]}
            obj = admission.prepare_create(ENDPOINTS_RT, body)
            meta.stamp_new(obj)
            try:
                store.create("endpoints", NAMESPACE, NAME, obj)
                return
            except ApiError as err:
                if is_already_exists(err):
                    continue
                raise
        subsets = current.get("subsets") or []
        ips = [address]
        if options.effective_datastore_url.startswith("postgres"):  # other servers may share the database
            ips = sorted({a.get("ip") for s in subsets for a in s.get("addresses") or [] if a.get("ip")} | {address})
        want = [{"addresses": [{"ip": ip} for ip in ips], "ports": [port]}]
        if subsets == want:
            return
        new = copy.deepcopy(current)
        new["subsets"] = want
        try:
            store.update("endpoints", NAMESPACE, NAME, new, int(current["metadata"].get("resourceVersion") or 0))
            return
        except ApiError as err:
            if not is_conflict(err):
                raise


def run_once(store: AllocatingStore, options: ApiServerOptions) -> None:
    """One pass: repair, then the kubernetes Service and Endpoints. Errors are logged."""
    for step, fn in (("repair", lambda: repair(store.inner, store.allocations)),
                     ("kubernetes service", lambda: ensure_kubernetes_service(store, options)),
                     ("kubernetes endpoints", lambda: ensure_kubernetes_endpoints(store, options))):
        try:
            fn()
        except Exception:
            log.exception("service allocation job: %s failed", step)


def start_jobs(store: Store, options: ApiServerOptions,
               interval_seconds: float = REPAIR_INTERVAL_SECONDS) -> Callable[[], None]:
    """Run the first pass now (blocking), schedule the next ones; returns `stop`."""
    if not isinstance(store, AllocatingStore):
        raise TypeError("start_jobs needs the store returned by install()")
    run_once(store, options)
    scheduler = BackgroundScheduler(job_defaults={"coalesce": True, "max_instances": 1}, daemon=True)
    scheduler.add_job(run_once, "interval", args=[store, options], id="service-allocations",
                      seconds=interval_seconds, coalesce=True, max_instances=1, misfire_grace_time=None)
    scheduler.start()

    def stop() -> None:
        if scheduler.running:
            scheduler.shutdown(wait=False)

    return stop
