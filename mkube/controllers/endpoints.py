"""Endpoints controller: for each Service with a selector, an Endpoints of the same name.

Addresses are the selected pods with an IP (ready ones in `addresses`, the others in
`notReadyAddresses`), ports resolved from each Service port's targetPort, grouped into
subsets by port set (endpoints_util.build_subsets). Nothing is written when nothing
changed. The Endpoints goes when its Service goes; Services without a selector are left
alone (their Endpoints belong to the user).

mkube extension — annotation `endpoints.mkube.io/published` (endpoints_util.PUBLISHED_ANNOTATION):
a JSON list of `{"ip": pod IP, "port": endpoint port, "hostIP": node address,
"hostPort": published port}` for every address+port whose pod publishes that container
port on its node (pod `status.publishedPorts` and `status.hostIP`; a published hostIP of
0.0.0.0 means the pod's hostIP), sorted by (ip, port, hostIP, hostPort). The node proxy
needs only Services and Endpoints: for an endpoint `ip:port` on another node it connects
to `hostIP:hostPort` instead. Pod IPs are unique per node only, so two entries may share
`ip` (they differ in hostIP).
"""

from __future__ import annotations

import logging

from mkube.api.errors import is_not_found
from mkube.api.types import Endpoints, EndpointSubset, ObjectMeta, Pod, Service
from mkube.controllers.base import Context, Controller
from mkube.controllers.endpoints_util import PUBLISHED_ANNOTATION, build_subsets, published_annotation

log = logging.getLogger(__name__)

HEADLESS_LABEL = "service.kubernetes.io/headless"
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"


def selects(service: Service, labels: dict[str, str] | None) -> bool:
    selector = service.spec.selector
    if not selector:
        return False
    have = labels or {}
    return all(have.get(k) == v for k, v in selector.items())


def _endpoint_fields(pod: Pod) -> tuple[object, ...]:
    """What of a pod can change its Endpoints entries."""
    ready = next((c.status for c in pod.status.conditions or [] if c.type == "Ready"), None)
    return (pod.status.pod_ip, pod.status.host_ip, ready, pod.status.phase, pod.metadata.deletion_timestamp,
            pod.spec.node_name, pod.spec.hostname, pod.spec.subdomain,
            [p.to_dict() for p in pod.status.published_ports or []],
            [[cp.to_dict() for cp in c.ports or []] for c in pod.spec.containers])


class EndpointsController(Controller):
    """See the module docstring."""

    name = "endpoints"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx, ctx.options.endpoints_workers)
        self.svc_informer = self.watch(Service, self.enqueue, self._update_service, self.enqueue)
        self.pod_informer = self.watch(Pod, self._add_pod, self._update_pod, self._add_pod)
        self.ep_informer = self.watch(Endpoints, self._add_endpoints, None, self.enqueue)

    # ------------------------------------------------------------------ handlers
    def _update_service(self, old: Service, new: Service) -> None:
        self.enqueue(new)

    def _services_for(self, pod: Pod, labels: dict[str, str] | None = None) -> list[Service]:
        lbls = pod.metadata.labels if labels is None else labels
        return [s for s in self.svc_informer.list(pod.metadata.namespace or "") if selects(s, lbls)]

    def _add_pod(self, pod: Pod) -> None:
        for svc in self._services_for(pod):
            self.enqueue(svc)

    def _update_pod(self, old: Pod, new: Pod) -> None:
        if old.metadata.resource_version == new.metadata.resource_version:
            return
        labels_changed = old.metadata.labels != new.metadata.labels
        if not labels_changed and _endpoint_fields(old) == _endpoint_fields(new):
            return
        keys = {s.key for s in self._services_for(new)}
        if labels_changed:
            keys |= {s.key for s in self._services_for(old, old.metadata.labels)}
        for key in keys:
            self.enqueue(key)

    def _add_endpoints(self, ep: Endpoints) -> None:
        # an Endpoints without a Service (left over) is removed (a deleted one is
        # recreated: the delete handler enqueues its key)
        if self.svc_informer.get(ep.key) is None or ep.metadata.deletion_timestamp is not None:
            self.enqueue(ep)

    # ------------------------------------------------------------------ sync
    def sync(self, key: str) -> None:
        svc = self.svc_informer.get(key)
        current = self.ep_informer.get(key)
        if svc is None:
            if current is not None and LEADER_ANNOTATION not in (current.metadata.annotations or {}):
                try:
                    self.client.delete(Endpoints, current.metadata.name or "", current.metadata.namespace)
                except Exception as e:
                    if not is_not_found(e):
                        raise
            return
        if not svc.spec.selector or svc.spec.type == "ExternalName":
            return
        pods = [p for p in self.pod_informer.list(svc.metadata.namespace or "") if selects(svc, p.metadata.labels)]
        subsets = build_subsets(svc, pods)
        published = published_annotation(subsets, pods)
        labels = dict(svc.metadata.labels or {})
        if svc.spec.cluster_ip == "None":
            labels[HEADLESS_LABEL] = ""
        if current is not None and self._unchanged(current, subsets, labels, published):
            return
        if current is None:
            new = Endpoints(metadata=ObjectMeta(name=svc.metadata.name, namespace=svc.metadata.namespace))
        else:
            new = current.copy_deep()
        new.subsets = subsets
        new.metadata.labels = labels or None
        annotations = dict(new.metadata.annotations or {})
        if published is None:
            annotations.pop(PUBLISHED_ANNOTATION, None)
        else:
            annotations[PUBLISHED_ANNOTATION] = published
        new.metadata.annotations = annotations or None
        if current is None:
            self.client.create(new, svc.metadata.namespace)
        else:
            self.client.update(new)

    @staticmethod
    def _unchanged(current: Endpoints, subsets: list[EndpointSubset], labels: dict[str, str],
                   published: str | None) -> bool:
        have = [s.to_dict() for s in current.subsets or []]
        want = [s.to_dict() for s in subsets]
        return (have == want and (current.metadata.labels or {}) == labels
                and (current.metadata.annotations or {}).get(PUBLISHED_ANNOTATION) == published)
