"""Object types of the served kinds, as pydantic v2 models (Kubernetes names).

Attributes are snake_case; the wire is camelCase (see base.KubeModel). Fields whose
Kubernetes spelling is not plain camelCase (`podIP`, `clusterIP`, `imageID`) carry an
explicit alias. Every field defaults to None so that parsing never invents values:
defaulting and validation are separate steps (defaults.py, validation.py), as in
Kubernetes. Unknown fields are kept on every level.

Timestamps are kept as RFC 3339 strings (see timeutil.py) so that what a client sent
is what it reads back.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from mkube.api.base import KubeModel

IntOrString = int | str
Quantity = str | int | float
ResourceList = dict[str, Quantity]


# --------------------------------------------------------------------------- metadata


class OwnerReference(KubeModel):
    api_version: str | None = None
    kind: str | None = None
    name: str | None = None
    uid: str | None = None
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ObjectMeta(KubeModel):
    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    deletion_grace_period_seconds: int | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    owner_references: list[OwnerReference] | None = None
    finalizers: list[str] | None = None

    @property
    def key(self) -> str:
        """`namespace/name`, or `name` for cluster-scoped objects (the workqueue key)."""
        return f"{self.namespace}/{self.name}" if self.namespace else (self.name or "")

    def controller_ref(self) -> OwnerReference | None:
        """The owner reference with controller=true, if any."""
        for ref in self.owner_references or []:
            if ref.controller:
                return ref
        return None


class ListMeta(KubeModel):
    resource_version: str | None = None
    continue_: str | None = Field(default=None, alias="continue")
    remaining_item_count: int | None = None


class ObjectReference(KubeModel):
    api_version: str | None = None
    kind: str | None = None
    namespace: str | None = None
    name: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    field_path: str | None = None


class LocalObjectReference(KubeModel):
    name: str | None = None


class LabelSelectorRequirement(KubeModel):
    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist
    values: list[str] | None = None


class LabelSelector(KubeModel):
    match_labels: dict[str, str] | None = None
    match_expressions: list[LabelSelectorRequirement] | None = None


class TopLevel(KubeModel):
    """Common shape of every stored kind: apiVersion, kind, metadata."""

    api_version: str | None = None
    kind: str | None = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)

    @property
    def key(self) -> str:
        return self.metadata.key


# --------------------------------------------------------------------------- pods


class ObjectFieldSelector(KubeModel):
    api_version: str | None = None
    field_path: str


class ConfigMapKeySelector(KubeModel):
    name: str | None = None
    key: str
    optional: bool | None = None


class SecretKeySelector(KubeModel):
    name: str | None = None
    key: str
    optional: bool | None = None


class ResourceFieldSelector(KubeModel):
    container_name: str | None = None
    resource: str
    divisor: Quantity | None = None


class EnvVarSource(KubeModel):
    field_ref: ObjectFieldSelector | None = None
    config_map_key_ref: ConfigMapKeySelector | None = None
    secret_key_ref: SecretKeySelector | None = None
    resource_field_ref: ResourceFieldSelector | None = None


class EnvVar(KubeModel):
    name: str
    value: str | None = None
    value_from: EnvVarSource | None = None


class ConfigMapEnvSource(KubeModel):
    name: str | None = None
    optional: bool | None = None


class SecretEnvSource(KubeModel):
    name: str | None = None
    optional: bool | None = None


class EnvFromSource(KubeModel):
    prefix: str | None = None
    config_map_ref: ConfigMapEnvSource | None = None
    secret_ref: SecretEnvSource | None = None


class ContainerPort(KubeModel):
    name: str | None = None
    container_port: int
    host_port: int | None = None
    host_ip: str | None = Field(default=None, alias="hostIP")
    protocol: str | None = None


class ResourceRequirements(KubeModel):
    limits: ResourceList | None = None
    requests: ResourceList | None = None


class VolumeMount(KubeModel):
    name: str
    mount_path: str
    read_only: bool | None = None
    sub_path: str | None = None


class ExecAction(KubeModel):
    command: list[str] | None = None


class HTTPHeader(KubeModel):
    name: str
    value: str


class HTTPGetAction(KubeModel):
    path: str | None = None
    port: IntOrString
    host: str | None = None
    scheme: str | None = None
    http_headers: list[HTTPHeader] | None = None


class TCPSocketAction(KubeModel):
    port: IntOrString
    host: str | None = None


class Probe(KubeModel):
    exec: ExecAction | None = None
    http_get: HTTPGetAction | None = None
    tcp_socket: TCPSocketAction | None = None
    initial_delay_seconds: int | None = None
    timeout_seconds: int | None = None
    period_seconds: int | None = None
    success_threshold: int | None = None
    failure_threshold: int | None = None
    termination_grace_period_seconds: int | None = None


class Container(KubeModel):
    name: str
    image: str | None = None
    command: list[str] | None = None
    args: list[str] | None = None
    working_dir: str | None = None
    ports: list[ContainerPort] | None = None
    env: list[EnvVar] | None = None
    env_from: list[EnvFromSource] | None = None
    resources: ResourceRequirements | None = None
    volume_mounts: list[VolumeMount] | None = None
    liveness_probe: Probe | None = None
    readiness_probe: Probe | None = None
    startup_probe: Probe | None = None
    lifecycle: dict[str, Any] | None = None
    termination_message_path: str | None = None
    termination_message_policy: str | None = None
    image_pull_policy: str | None = None
    security_context: dict[str, Any] | None = None
    stdin: bool | None = None
    tty: bool | None = None


class KeyToPath(KubeModel):
    key: str
    path: str
    mode: int | None = None


class EmptyDirVolumeSource(KubeModel):
    medium: str | None = None
    size_limit: Quantity | None = None


class HostPathVolumeSource(KubeModel):
    path: str
    type: str | None = None


class ConfigMapVolumeSource(KubeModel):
    name: str | None = None
    items: list[KeyToPath] | None = None
    default_mode: int | None = None
    optional: bool | None = None


class SecretVolumeSource(KubeModel):
    secret_name: str | None = None
    items: list[KeyToPath] | None = None
    default_mode: int | None = None
    optional: bool | None = None


class Volume(KubeModel):
    name: str
    empty_dir: EmptyDirVolumeSource | None = None
    host_path: HostPathVolumeSource | None = None
    config_map: ConfigMapVolumeSource | None = None
    secret: SecretVolumeSource | None = None


class Toleration(KubeModel):
    key: str | None = None
    operator: str | None = None  # Exists, Equal (default)
    value: str | None = None
    effect: str | None = None  # NoSchedule, PreferNoSchedule, NoExecute; empty = all
    toleration_seconds: int | None = None


class NodeSelectorRequirement(KubeModel):
    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist, Gt, Lt
    values: list[str] | None = None


class NodeSelectorTerm(KubeModel):
    match_expressions: list[NodeSelectorRequirement] | None = None
    match_fields: list[NodeSelectorRequirement] | None = None


class NodeSelector(KubeModel):
    node_selector_terms: list[NodeSelectorTerm]


class PreferredSchedulingTerm(KubeModel):
    weight: int
    preference: NodeSelectorTerm


class NodeAffinity(KubeModel):
    required_during_scheduling_ignored_during_execution: NodeSelector | None = None
    preferred_during_scheduling_ignored_during_execution: list[PreferredSchedulingTerm] | None = None


class Affinity(KubeModel):
    node_affinity: NodeAffinity | None = None
    pod_affinity: dict[str, Any] | None = None
    pod_anti_affinity: dict[str, Any] | None = None


class PodSpec(KubeModel):
    containers: list[Container] = Field(default_factory=list)
    init_containers: list[Container] | None = None
    volumes: list[Volume] | None = None
    restart_policy: str | None = None  # Always, OnFailure, Never
    termination_grace_period_seconds: int | None = None
    active_deadline_seconds: int | None = None
    dns_policy: str | None = None
    node_selector: dict[str, str] | None = None
    service_account_name: str | None = None
    node_name: str | None = None
    host_network: bool | None = None
    hostname: str | None = None
    subdomain: str | None = None
    affinity: Affinity | None = None
    tolerations: list[Toleration] | None = None
    scheduler_name: str | None = None
    priority: int | None = None
    priority_class_name: str | None = None
    enable_service_links: bool | None = None
    image_pull_secrets: list[LocalObjectReference] | None = None
    security_context: dict[str, Any] | None = None


class PodCondition(KubeModel):
    type: str  # PodScheduled, Initialized, ContainersReady, Ready
    status: str  # True, False, Unknown
    last_probe_time: str | None = None
    last_transition_time: str | None = None
    reason: str | None = None
    message: str | None = None


class ContainerStateWaiting(KubeModel):
    reason: str | None = None
    message: str | None = None


class ContainerStateRunning(KubeModel):
    started_at: str | None = None


class ContainerStateTerminated(KubeModel):
    exit_code: int = 0
    signal: int | None = None
    reason: str | None = None
    message: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    container_id: str | None = Field(default=None, alias="containerID")


class ContainerState(KubeModel):
    waiting: ContainerStateWaiting | None = None
    running: ContainerStateRunning | None = None
    terminated: ContainerStateTerminated | None = None


class ContainerStatus(KubeModel):
    name: str
    state: ContainerState | None = None
    last_state: ContainerState | None = None
    ready: bool = False
    restart_count: int = 0
    image: str | None = None
    image_id: str | None = Field(default=None, alias="imageID")
    container_id: str | None = Field(default=None, alias="containerID")
    started: bool | None = None


class PodIP(KubeModel):
    ip: str


class PublishedPort(KubeModel):
    """mkube extension: where a pod's container port is published on its node.

    Other nodes reach a pod through `hostIP:hostPort` (pods are on per-node Docker
    bridges, so the pod IP is only routable on its own node)."""

    container_port: int
    protocol: str = "TCP"
    host_port: int
    host_ip: str | None = Field(default=None, alias="hostIP")


class PodStatus(KubeModel):
    phase: str | None = None  # Pending, Running, Succeeded, Failed, Unknown
    conditions: list[PodCondition] | None = None
    message: str | None = None
    reason: str | None = None
    host_ip: str | None = Field(default=None, alias="hostIP")
    pod_ip: str | None = Field(default=None, alias="podIP")
    pod_ips: list[PodIP] | None = Field(default=None, alias="podIPs")
    start_time: str | None = None
    init_container_statuses: list[ContainerStatus] | None = None
    container_statuses: list[ContainerStatus] | None = None
    qos_class: str | None = None
    nominated_node_name: str | None = None
    published_ports: list[PublishedPort] | None = None  # mkube extension, see PublishedPort


class PodTemplateSpec(KubeModel):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: PodSpec = Field(default_factory=PodSpec)


class Pod(TopLevel):
    api_version: str | None = "v1"
    kind: str | None = "Pod"
    spec: PodSpec = Field(default_factory=PodSpec)
    status: PodStatus = Field(default_factory=PodStatus)


class Binding(TopLevel):
    api_version: str | None = "v1"
    kind: str | None = "Binding"
    target: ObjectReference


# --------------------------------------------------------------------------- nodes


class Taint(KubeModel):
    key: str
    value: str | None = None
    effect: str  # NoSchedule, PreferNoSchedule, NoExecute
    time_added: str | None = None


class NodeSpec(KubeModel):
    pod_cidr: str | None = Field(default=None, alias="podCIDR")
    pod_cidrs: list[str] | None = Field(default=None, alias="podCIDRs")
    unschedulable: bool | None = None
    taints: list[Taint] | None = None
    provider_id: str | None = Field(default=None, alias="providerID")


class NodeCondition(KubeModel):
    type: str  # Ready, MemoryPressure, DiskPressure, PIDPressure, NetworkUnavailable
    status: str
    last_heartbeat_time: str | None = None
    last_transition_time: str | None = None
    reason: str | None = None
    message: str | None = None


class NodeAddress(KubeModel):
    type: str  # InternalIP, ExternalIP, Hostname
    address: str


class DaemonEndpoint(KubeModel):
    port: int = Field(alias="Port")


class NodeDaemonEndpoints(KubeModel):
    kubelet_endpoint: DaemonEndpoint | None = None


class NodeSystemInfo(KubeModel):
    machine_id: str | None = Field(default=None, alias="machineID")
    system_uuid: str | None = Field(default=None, alias="systemUUID")
    boot_id: str | None = Field(default=None, alias="bootID")
    kernel_version: str | None = None
    os_image: str | None = None
    container_runtime_version: str | None = None
    kubelet_version: str | None = None
    kube_proxy_version: str | None = None
    operating_system: str | None = None
    architecture: str | None = None


class NodeStatus(KubeModel):
    capacity: ResourceList | None = None
    allocatable: ResourceList | None = None
    conditions: list[NodeCondition] | None = None
    addresses: list[NodeAddress] | None = None
    daemon_endpoints: NodeDaemonEndpoints | None = None
    node_info: NodeSystemInfo | None = None
    phase: str | None = None


class Node(TopLevel):
    api_version: str | None = "v1"
    kind: str | None = "Node"
    spec: NodeSpec = Field(default_factory=NodeSpec)
    status: NodeStatus = Field(default_factory=NodeStatus)

    def condition(self, type_: str) -> NodeCondition | None:
        for cond in self.status.conditions or []:
            if cond.type == type_:
                return cond
        return None

    def internal_ip(self) -> str | None:
        for addr in self.status.addresses or []:
            if addr.type == "InternalIP":
                return addr.address
        return None


# --------------------------------------------------------------------------- namespaces, config


class NamespaceSpec(KubeModel):
    finalizers: list[str] | None = None


class NamespaceStatus(KubeModel):
    phase: str | None = None  # Active, Terminating
    conditions: list[dict[str, Any]] | None = None


class Namespace(TopLevel):
    api_version: str | None = "v1"
    kind: str | None = "Namespace"
    spec: NamespaceSpec = Field(default_factory=NamespaceSpec)
    status: NamespaceStatus = Field(default_factory=NamespaceStatus)


class ConfigMap(TopLevel):
    api_version: str | None = "v1"
    kind: str | None = "ConfigMap"
    data: dict[str, str] | None = None
    binary_data: dict[str, str] | None = None
    immutable: bool | None = None


class Secret(TopLevel):
    api_version: str | None = "v1"
    kind: str | None = "Secret"
    data: dict[str, str] | None = None  # base64 values
    string_data: dict[str, str] | None = None  # write-only; merged into data on write
    type: str | None = None
    immutable: bool | None = None


# --------------------------------------------------------------------------- services


class ServicePort(KubeModel):
    name: str | None = None
    protocol: str | None = None  # TCP, UDP, SCTP
    port: int
    target_port: IntOrString | None = None
    node_port: int | None = None
    app_protocol: str | None = None


class SessionAffinityConfig(KubeModel):
    client_ip: dict[str, Any] | None = Field(default=None, alias="clientIP")


class ServiceSpec(KubeModel):
    type: str | None = None  # ClusterIP, NodePort, LoadBalancer, ExternalName
    selector: dict[str, str] | None = None
    ports: list[ServicePort] | None = None
    cluster_ip: str | None = Field(default=None, alias="clusterIP")
    cluster_ips: list[str] | None = Field(default=None, alias="clusterIPs")
    external_ips: list[str] | None = Field(default=None, alias="externalIPs")
    external_name: str | None = None
    session_affinity: str | None = None  # None, ClientIP
    session_affinity_config: SessionAffinityConfig | None = None
    external_traffic_policy: str | None = None
    internal_traffic_policy: str | None = None
    load_balancer_ip: str | None = Field(default=None, alias="loadBalancerIP")
    ip_families: list[str] | None = None
    ip_family_policy: str | None = None
    publish_not_ready_addresses: bool | None = None


class ServiceStatus(KubeModel):
    load_balancer: dict[str, Any] | None = None


class Service(TopLevel):
    api_version: str | None = "v1"
    kind: str | None = "Service"
    spec: ServiceSpec = Field(default_factory=ServiceSpec)
    status: ServiceStatus = Field(default_factory=ServiceStatus)


class EndpointAddress(KubeModel):
    ip: str
    hostname: str | None = None
    node_name: str | None = None
    target_ref: ObjectReference | None = None


class EndpointPort(KubeModel):
    name: str | None = None
    port: int
    protocol: str | None = None
    app_protocol: str | None = None


class EndpointSubset(KubeModel):
    addresses: list[EndpointAddress] | None = None
    not_ready_addresses: list[EndpointAddress] | None = None
    ports: list[EndpointPort] | None = None


class Endpoints(TopLevel):
    api_version: str | None = "v1"
    kind: str | None = "Endpoints"
    subsets: list[EndpointSubset] | None = None


# --------------------------------------------------------------------------- events, leases


class EventSource(KubeModel):
    component: str | None = None
    host: str | None = None


class Event(TopLevel):
    api_version: str | None = "v1"
    kind: str | None = "Event"
    involved_object: ObjectReference = Field(default_factory=ObjectReference)
    reason: str | None = None
    message: str | None = None
    source: EventSource | None = None
    first_timestamp: str | None = None
    last_timestamp: str | None = None
    event_time: str | None = None
    count: int | None = None
    type: str | None = None  # Normal, Warning
    action: str | None = None
    reporting_component: str | None = None
    reporting_instance: str | None = None


class LeaseSpec(KubeModel):
    holder_identity: str | None = None
    lease_duration_seconds: int | None = None
    acquire_time: str | None = None
    renew_time: str | None = None
    lease_transitions: int | None = None


class Lease(TopLevel):
    api_version: str | None = "coordination.k8s.io/v1"
    kind: str | None = "Lease"
    spec: LeaseSpec = Field(default_factory=LeaseSpec)


# --------------------------------------------------------------------------- workloads


class RollingUpdateDeployment(KubeModel):
    max_unavailable: IntOrString | None = None
    max_surge: IntOrString | None = None


class DeploymentStrategy(KubeModel):
    type: str | None = None  # RollingUpdate, Recreate
    rolling_update: RollingUpdateDeployment | None = None


class DeploymentCondition(KubeModel):
    type: str  # Available, Progressing, ReplicaFailure
    status: str
    last_update_time: str | None = None
    last_transition_time: str | None = None
    reason: str | None = None
    message: str | None = None


class DeploymentSpec(KubeModel):
    replicas: int | None = None
    selector: LabelSelector | None = None
    template: PodTemplateSpec = Field(default_factory=PodTemplateSpec)
    strategy: DeploymentStrategy | None = None
    min_ready_seconds: int | None = None
    revision_history_limit: int | None = None
    paused: bool | None = None
    progress_deadline_seconds: int | None = None


class DeploymentStatus(KubeModel):
    observed_generation: int | None = None
    replicas: int | None = None
    updated_replicas: int | None = None
    ready_replicas: int | None = None
    available_replicas: int | None = None
    unavailable_replicas: int | None = None
    conditions: list[DeploymentCondition] | None = None
    collision_count: int | None = None


class Deployment(TopLevel):
    api_version: str | None = "apps/v1"
    kind: str | None = "Deployment"
    spec: DeploymentSpec = Field(default_factory=DeploymentSpec)
    status: DeploymentStatus = Field(default_factory=DeploymentStatus)


class ReplicaSetCondition(KubeModel):
    type: str
    status: str
    last_transition_time: str | None = None
    reason: str | None = None
    message: str | None = None


class ReplicaSetSpec(KubeModel):
    replicas: int | None = None
    min_ready_seconds: int | None = None
    selector: LabelSelector | None = None
    template: PodTemplateSpec = Field(default_factory=PodTemplateSpec)


class ReplicaSetStatus(KubeModel):
    replicas: int = 0
    fully_labeled_replicas: int | None = None
    ready_replicas: int | None = None
    available_replicas: int | None = None
    observed_generation: int | None = None
    conditions: list[ReplicaSetCondition] | None = None


class ReplicaSet(TopLevel):
    api_version: str | None = "apps/v1"
    kind: str | None = "ReplicaSet"
    spec: ReplicaSetSpec = Field(default_factory=ReplicaSetSpec)
    status: ReplicaSetStatus = Field(default_factory=ReplicaSetStatus)


class ScaleSpec(KubeModel):
    replicas: int | None = None


class ScaleStatus(KubeModel):
    replicas: int = 0
    selector: str | None = None


class Scale(TopLevel):
    api_version: str | None = "autoscaling/v1"
    kind: str | None = "Scale"
    spec: ScaleSpec = Field(default_factory=ScaleSpec)
    status: ScaleStatus = Field(default_factory=ScaleStatus)


# --------------------------------------------------------------------------- requests


class Preconditions(KubeModel):
    uid: str | None = None
    resource_version: str | None = None


class DeleteOptions(KubeModel):
    api_version: str | None = None
    kind: str | None = None
    grace_period_seconds: int | None = None
    propagation_policy: Literal["Orphan", "Background", "Foreground"] | None = None
    preconditions: Preconditions | None = None
    orphan_dependents: bool | None = None
    dry_run: list[str] | None = None


KINDS: dict[str, type[TopLevel]] = {
    cls.__name__: cls
    for cls in (Namespace, Node, Pod, Service, Endpoints, ConfigMap, Secret, Event, Lease, Deployment,
                ReplicaSet, Binding, Scale)
}
