"""Authorization: may this user do this to that resource? A pure function over a table.

The admin (group system:masters) may do everything. A node ("system:node:<name>") may do
what a kubelet and its service proxy need, and no more, like Kubernetes' Node
authorizer plus the NodeRestriction admission plugin:

- read (get/list/watch) pods, services, endpoints, nodes, namespaces, configmaps,
  secrets and events. (Kubernetes narrows configmap/secret reads to those the node's
  pods reference; mkube does not, yet: a node can read every Secret.)
- create its own Node; get/update/patch/delete its own Node and its status;
- create/get/update/patch/delete its own Lease in kube-node-lease;
- update/patch the status of pods bound to it (spec.nodeName == the node), and delete
  them (the kubelet confirms a graceful deletion with a delete of grace period 0);
- create/update/patch events (in any namespace).

Anything else — another node's Node or pods, Deployments, Services, bindings, pod
creation, deletecollection, ... — is Forbidden. Some rules depend on the object, not
only the request: `authorize` then answers with a `condition` the caller checks
(`POD_ON_NODE`: the stored pod's spec.nodeName is the node; `BODY_NAME_IS_NODE`: the
created object's metadata.name is the node).
"""

from __future__ import annotations

from dataclasses import dataclass

from mkube.apiserver.auth import User

READ = frozenset({"get", "list", "watch"})
WRITE = frozenset({"update", "patch"})
ANY_SUB = None

# conditions a caller checks against the stored object or the request body
POD_ON_NODE = "pod-on-node"
BODY_NAME_IS_NODE = "body-name-is-node"
NODE_LEASE_NAMESPACE = "kube-node-lease"


@dataclass(frozen=True)
class Attributes:
    """One resource request, as the dispatcher parsed it."""

    verb: str  # get list watch create update patch delete deletecollection
    group: str  # "" for the core group
    resource: str  # plural, e.g. "pods"
    subresource: str = ""  # "", "status", "binding", "log", "exec", "scale", ...
    namespace: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    condition: str | None = None  # when allowed: what else must hold (see module doc)
    reason: str = ""


@dataclass(frozen=True)
class Rule:
    """Allows `verbs` on `group`/`resources` with `subresources` (None: any) ...

    `own_name`: the object's name must be the node's; `namespace`: only in that
    namespace; `condition`: a check on the object the caller makes."""

    verbs: frozenset[str]
    group: str
    resources: frozenset[str]
    subresources: frozenset[str] | None = frozenset({""})
    own_name: bool = False
    namespace: str | None = None
    condition: str | None = None

    def matches(self, a: Attributes) -> bool:
        return (a.verb in self.verbs and a.group == self.group and a.resource in self.resources
                and (self.subresources is None or a.subresource in self.subresources)
                and (self.namespace is None or a.namespace == self.namespace))


def _r(verbs: set[str] | frozenset[str], group: str, resources: set[str], **kw: object) -> Rule:
    return Rule(frozenset(verbs), group, frozenset(resources), **kw)  # type: ignore[arg-type]


NODE_RULES: tuple[Rule, ...] = (
    _r(READ, "", {"pods", "services", "endpoints", "nodes", "namespaces", "configmaps", "secrets", "events"},
       subresources=frozenset({"", "status"})),
    _r({"create"}, "", {"nodes"}, condition=BODY_NAME_IS_NODE),
    _r(READ | WRITE | {"delete"}, "", {"nodes"}, subresources=frozenset({"", "status"}), own_name=True),
    _r({"create"}, "coordination.k8s.io", {"leases"}, namespace=NODE_LEASE_NAMESPACE,
       condition=BODY_NAME_IS_NODE),
    _r(READ | WRITE | {"delete"}, "coordination.k8s.io", {"leases"}, namespace=NODE_LEASE_NAMESPACE,
       own_name=True),
    _r(WRITE, "", {"pods"}, subresources=frozenset({"status"}), condition=POD_ON_NODE),
    _r({"delete"}, "", {"pods"}, condition=POD_ON_NODE),
    _r({"create"} | WRITE, "", {"events"}),
)

ALLOW = Decision(True)


def authorize(user: User, attrs: Attributes, rules: tuple[Rule, ...] = NODE_RULES) -> Decision:
    """Decide `attrs` for `user` (pure). Nodes follow `rules`; unknown kinds of users get nothing."""
    if user.is_admin:
        return ALLOW
    if user.node is None:
        return Decision(False, reason="no rule allows this user")
    for rule in rules:
        if not rule.matches(attrs):
            continue
        if rule.own_name and attrs.name != user.node:
            continue
        return Decision(True, condition=rule.condition)
    # like Kubernetes, a plain "cannot" unless there is more to say (the object is another node's)
    reason = f'node "{user.node}" may not {attrs.verb} {_resource(attrs)} of another node' \
        if _other_nodes(attrs, user.node) else ""
    return Decision(False, reason=reason)


def _resource(a: Attributes) -> str:
    return a.resource + (f"/{a.subresource}" if a.subresource else "")


def _other_nodes(a: Attributes, node: str) -> bool:
    return (a.resource in ("nodes", "leases") and a.name is not None and a.name != node
            and a.verb not in READ | {"create"})


def forbidden_message(user: User, attrs: Attributes, reason: str = "") -> str:
    """Kubernetes' wording: `pods "web" is forbidden: User "system:node:n1" cannot update
    resource "pods/status" in API group "" in the namespace "default": <reason>`."""
    qualified = attrs.resource + (f".{attrs.group}" if attrs.group else "")
    subject = f'{qualified} "{attrs.name}"' if attrs.name else qualified
    scope = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    msg = (f'{subject} is forbidden: User "{user.name}" cannot {attrs.verb} resource "{_resource(attrs)}" '
           f'in API group "{attrs.group}" {scope}')
    return f"{msg}: {reason}" if reason else msg
