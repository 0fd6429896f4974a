"""`FakeClient`: an in-memory API server behind the `BaseClient` interface, for unit tests.

Behaves like the real server where controllers, the scheduler and the kubelet can tell:
- one global resourceVersion, bumped by every write; no-op updates write nothing;
- create: AlreadyExists, generateName, uid/creationTimestamp/generation, status reset
  for kinds that own it through /status (Pod -> phase Pending, Namespace -> Active with
  the "kubernetes" finalizer), defaulting and validation through `mkube.api.strategy`
  when `mkube.api.validation` is available (admission=True);
- update: Conflict on a stale resourceVersion, status kept (main resource) or only the
  status taken (/status), generation bumped on spec changes, PUT creates Endpoints,
  Events and Leases that do not exist;
- patch: merge, strategic (built-in list keys) and JSON patch, also on /status and /scale;
- delete: preconditions, finalizers (deletionTimestamp set, removed when the last
  finalizer goes), graceful pod deletion (a pod bound to a node and not terminated gets
  deletionTimestamp + deletionGracePeriodSeconds; grace 0 removes it), Foreground/Orphan
  propagation finalizers, namespaces go Terminating until /finalize empties them;
- label and field selectors (the field labels the server supports), limit/continue;
- watch from a resourceVersion with the server's selector semantics (an object that
  stops matching arrives as DELETED), Gone (410) after `compact()`, BOOKMARK at timeout;
- pods/binding and deployments|replicasets/scale.

Deterministic: uids and generated names come from a seeded RNG; `clock` is injectable.
Test helpers: `add()` (insert as-is, e.g. with a status), `compact()`, `set_log()`,
`actions` (what was called), `add_reactor()` (inject errors or answers).
"""

from __future__ import annotations

import base64
import importlib.util
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from mkube.api import patch as patching
from mkube.api import selectors, strategy, timeutil
from mkube.api.errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    Cause,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    MethodNotAllowed,
    NotFound,
)
from mkube.api.kinds import RESOURCES, ResourceType, by_path
from mkube.client._selection import build_predicate
from mkube.client.interface import (
    PATCH_CONTENT_TYPES,
    BaseClient,
    PatchBody,
    PatchType,
    PropagationPolicy,
    object_name,
)
from mkube.client.objects import Obj, ResourceLike, Watch, WatchEvent, resource_for

_STATUS_RESET_ON_CREATE = {"Pod", "Deployment", "ReplicaSet", "Service", "Namespace"}
_CREATE_ON_UPDATE = {"Endpoints", "Event", "Lease"}
_RETURN_DELETED = {"Pod", "Namespace", "Service"}
BUILTIN_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_UNDELETABLE = ("default", "kube-system", "kube-public")
_ALPHANUM = "bcdfghjklmnpqrstvwxz2456789"
_CONFLICT_MSG = "the object has been modified; please apply your changes to the latest version and try again"
_HAVE_VALIDATION = importlib.util.find_spec("mkube.api.validation") is not None


def _copy(obj: Any) -> Any:
    return orjson.loads(orjson.dumps(obj))


@dataclass(frozen=True)
class Action:
    """One call the fake received (for assertions, like client-go's fake Actions())."""

    verb: str  # get, list, watch, create, update, patch, delete
    resource: str  # group-qualified plural: "pods", "deployments.apps"
    namespace: str = ""
    name: str = ""
    subresource: str = ""
    body: Any = None


Reactor = Callable[[Action], "Obj | None"]


@dataclass
class _Change:
    revision: int
    type: str
    resource: str
    namespace: str
    obj: Obj
    prev: Obj | None = None


@dataclass
class _Store:
    objects: dict[str, dict[tuple[str, str], Obj]] = field(default_factory=dict)

    def table(self, rt: ResourceType) -> dict[tuple[str, str], Obj]:
        return self.objects.setdefault(rt.group_resource, {})


def _meta(obj: Obj) -> Obj:
    md = obj.get("metadata")
    if md is None:
        md = obj["metadata"] = {}
    if not isinstance(md, dict):
        raise BadRequest("metadata must be an object")
    return md


def _apply_patch(target: Obj, patch: Any, patch_type: str, kind: str) -> Obj:
    """Apply a patch as the server does: malformed -> 400, does not apply -> 422."""
    try:
        if patch_type == "merge":
            if not isinstance(patch, dict):
                raise patching.PatchError("merge patch must be a JSON object")
            result = patching.merge_patch(target, patch)
        elif patch_type == "strategic":
            result = patching.strategic_merge_patch(target, patch, kind)
        else:
            result = patching.json_patch(target, patch)
    except patching.PatchConflict as e:
        raise Invalid(kind, str(_meta(target).get("name", "")), [Cause(e.path, str(e))]) from None
    except ValueError as e:
        raise BadRequest(str(e)) from None
    if not isinstance(result, dict):
        raise BadRequest("the patch did not produce an object")
    return result


_NAMESPACES = resource_for("namespaces")


def _finalizers_for(finalizers: list[str], policy: str | None) -> list[str]:
    """Orphan and Foreground propagation are finalizers the garbage collector honours."""
    out = list(finalizers)
    if policy == "Orphan":
        out = [f for f in out if f != "foregroundDeletion"] + ([] if "orphan" in out else ["orphan"])
    elif policy == "Foreground":
        out = [f for f in out if f != "orphan"] + ([] if "foregroundDeletion" in out else ["foregroundDeletion"])
    return out


def _selector_string(selector: Any) -> str:
    try:
        return selectors.selector_to_string(selector)
    except ValueError:
        return ""


class FakeClient(BaseClient):
    """In-memory API (see module docstring). Thread-safe; fast; deterministic."""

    def __init__(self, namespace: str = "default", *, admission: bool = True, seed: int = 0,
                 clock: Callable[[], datetime] = timeutil.now, max_log: int = 100_000,
                 require_namespaces: bool = True) -> None:
        """`require_namespaces`: like the server, the built-in namespaces exist from the start
        (default, kube-system, kube-public, kube-node-lease: revisions 1-4) and creating in
        a missing namespace is NotFound (Forbidden while it terminates). False: any
        namespace may be used and none is pre-created."""
        self.default_namespace = namespace
        self.require_namespaces = require_namespaces
        self.admission = admission and _HAVE_VALIDATION
        self._clock = clock
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._store = _Store()
        self._revision = 0
        self._log: list[_Change] = []  # _log[i].revision == self._log_base + i
        self._log_base = 1
        self._max_log = max_log
        self._compacted = 0  # watches from a revision below this get Gone
        self._logs: dict[tuple[str, str, str], str] = {}
        self._reactors: list[tuple[str, str, Reactor]] = []
        self.actions: list[Action] = []
        if require_namespaces:
            for name in BUILTIN_NAMESPACES:
                self.create_raw("namespaces", {"metadata": {"name": name}})
            self.actions.clear()

    # ------------------------------------------------------------------ test helpers
    @property
    def resource_version(self) -> int:
        """The current global revision."""
        with self._lock:
            return self._revision

    def add(self, obj: Any) -> Obj:
        """Insert an object as given (model or wire dict), bypassing admission and status
        reset: for seeding tests with e.g. Running pods. Sets uid/creationTimestamp/
        resourceVersion if missing; emits ADDED. Returns the stored dict."""
        body = _copy(obj.to_dict() if hasattr(obj, "to_dict") else obj)
        rt = resource_for(self._rt_name(body))
        body = self._with_type(rt, body)
        md = _meta(body)
        if rt.namespaced:
            md.setdefault("namespace", self.default_namespace)
        else:
            md.pop("namespace", None)
        if not md.get("name"):
            raise BadRequest("add(): metadata.name is required")
        md.setdefault("uid", self._uid())
        md.setdefault("creationTimestamp", timeutil.format_time(self._clock()))
        md.setdefault("generation", 1)
        with self._lock:
            key = (md.get("namespace", ""), md["name"])
            if key in self._store.table(rt):
                raise AlreadyExists(rt.plural, md["name"], group=rt.group or None)
            return _copy(self._write(rt, "ADDED", body))

    @staticmethod
    def _rt_name(body: Obj) -> ResourceType:
        for rt in RESOURCES:
            if rt.kind == body.get("kind") and rt.api_version == (body.get("apiVersion") or rt.api_version):
                return rt
        raise BadRequest(f"add(): unknown kind {body.get('apiVersion')}/{body.get('kind')}")

    def compact(self, revision: int | None = None) -> None:
        """Forget the change log up to `revision` (default: now): older watches get Gone."""
        with self._cond:
            upto = self._revision if revision is None else min(revision, self._revision)
            drop = max(0, upto - self._log_base + 1)
            del self._log[:drop]
            self._log_base += drop
            self._compacted = max(self._compacted, upto)
            self._cond.notify_all()

    def set_log(self, namespace: str, pod: str, text: str, container: str = "") -> None:
        """What `log()` returns for that pod (and container; "" = the pod's only container)."""
        self._logs[(namespace, pod, container)] = text

    def add_reactor(self, verb: str, resource: str, fn: Reactor) -> None:
        """Run `fn(action)` before calls matching verb/resource ("*" matches any). It may
        raise (the call fails), return a dict (the call answers that) or None (go on)."""
        self._reactors.append((verb, resource, fn))

    def clear_actions(self) -> None:
        self.actions.clear()

    def _react(self, action: Action) -> Obj | None:
        self.actions.append(action)
        for verb, resource, fn in list(self._reactors):
            if verb in ("*", action.verb) and resource in ("*", action.resource, action.resource.split(".")[0]):
                out = fn(action)
                if out is not None:
                    return out
        return None

    # ------------------------------------------------------------------ internals
    def _uid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _now(self) -> str:
        return timeutil.format_time(self._clock())

    def _write(self, rt: ResourceType, etype: str, obj: Obj, prev: Obj | None = None) -> Obj:
        """Bump the revision, store (or remove, for DELETED) and log one change. Lock held."""
        self._revision += 1
        md = _meta(obj)
        md["resourceVersion"] = str(self._revision)
        key = (md.get("namespace", ""), md.get("name", ""))
        table = self._store.table(rt)
        if etype == "DELETED":
            table.pop(key, None)
        else:
            table[key] = obj
        self._log.append(_Change(self._revision, etype, rt.group_resource, key[0], obj, prev))
        if etype == "DELETED" and rt.namespaced and self.require_namespaces:
            self._finish_namespace(key[0])
        if len(self._log) > self._max_log:
            drop = len(self._log) - self._max_log
            del self._log[:drop]
            self._log_base += drop
            self._compacted = self._log_base - 1
        self._cond.notify_all()
        return obj

    def _existing(self, rt: ResourceType, ns: str | None, name: str) -> Obj:
        obj = self._store.table(rt).get((ns or "", name))
        if obj is None:
            raise NotFound(rt.plural, name, group=rt.group or None)
        return obj

    def _admit(self, fn: Callable[..., Obj], rt: ResourceType, *args: Obj) -> Obj:
        if not self.admission:
            return args[0]
        from pydantic import ValidationError

        try:
            return fn(rt, *args)
        except ValidationError as e:
            causes = [Cause(field=".".join(str(p) for p in err.get("loc", ())), message=str(err.get("msg")))
                      for err in e.errors()[:20]]
            raise Invalid(rt.kind, str(_meta(args[0]).get("name", "")), causes, group=rt.group or None) from None

    def _check_writable(self, rt: ResourceType, namespace: str, name: str) -> None:
        """404 if the namespace does not exist; 403 while it terminates (as the server)."""
        if not self.require_namespaces:
            return
        ns_obj = self._store.table(_NAMESPACES).get(("", namespace))
        if ns_obj is None:
            raise NotFound("namespaces", namespace)
        if (ns_obj.get("status") or {}).get("phase") == "Terminating":
            raise Forbidden(f'{rt.group_resource} "{name}" is forbidden: unable to create new content in '
                            f"namespace {namespace} because it is being terminated", kind=rt.plural, name=name)

    def _check_namespace(self, rt: ResourceType, ns: str | None, body: Obj) -> None:
        md = _meta(body)
        if rt.namespaced:
            if md.get("namespace") and md["namespace"] != ns:
                raise BadRequest("the namespace of the provided object does not match the namespace sent on "
                                 "the request")
            md["namespace"] = ns
        else:
            md.pop("namespace", None)

    # ------------------------------------------------------------------ raw primitives
    def get_raw(self, resource: ResourceLike, name: str, namespace: str | None = None,
                subresource: str | None = None) -> Obj:
        rt = resource_for(resource)
        ns = self.namespace_for(rt, namespace)
        answer = self._react(Action("get", rt.group_resource, ns or "", name, subresource or ""))
        if answer is not None:
            return answer
        with self._lock:
            obj = self._existing(rt, ns, name)
            if subresource == "scale":
                return self._scale_of(rt, obj)
            if subresource not in (None, "", "status"):
                raise NotFound(rt.plural, name, group=rt.group or None)
            return _copy(obj)

    def list_raw(self, resource: ResourceLike, namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None,
                 limit: int | None = None, continue_: str | None = None,
                 resource_version: str | None = None) -> Obj:
        rt = resource_for(resource)
        ns = namespace if rt.namespaced else None
        answer = self._react(Action("list", rt.group_resource, ns or ""))
        if answer is not None:
            return answer
        predicate = build_predicate(rt, label_selector, field_selector)
        start: tuple[str, str] | None = None
        with self._lock:
            revision = self._revision
            if continue_:
                try:
                    revision, start_ns, start_name = orjson.loads(base64.urlsafe_b64decode(continue_))
                    start = (start_ns, start_name)
                except (ValueError, TypeError) as e:
                    raise BadRequest("invalid continue token") from e
            keys = sorted(k for k in self._store.table(rt) if not ns or k[0] == ns)
            if start is not None:
                keys = [k for k in keys if k > start]
            items = [self._store.table(rt)[k] for k in keys]
            if predicate is not None:
                items = [o for o in items if predicate(o)]
            meta: Obj = {"resourceVersion": str(revision)}
            if limit and len(items) > limit:
                last = _meta(items[limit - 1])
                token = orjson.dumps([revision, last.get("namespace", ""), last.get("name", "")])
                meta["continue"] = base64.urlsafe_b64encode(token).decode()
                meta["remainingItemCount"] = len(items) - limit
                items = items[:limit]
            return {"apiVersion": rt.api_version, "kind": rt.list_kind_name, "metadata": meta,
                    "items": _copy(items)}

    def create_raw(self, resource: ResourceLike, body: Obj, namespace: str | None = None, *,
                   name: str | None = None, subresource: str | None = None) -> Obj:
        rt = resource_for(resource)
        ns = self.namespace_for(rt, namespace, body)
        answer = self._react(Action("create", rt.group_resource, ns or "", name or str(_meta(body).get("name", "")),
                                    subresource or "", body))
        if answer is not None:
            return answer
        if subresource:
            if rt.kind == "Pod" and subresource == "binding":
                return self._bind(ns or "", name or object_name(body), body)
            raise MethodNotAllowed(f"the server does not allow POST on {rt.plural}/{subresource}")
        body = self._with_type(rt, _copy(body))
        self._check_namespace(rt, ns, body)
        md = _meta(body)
        if not md.get("name"):
            if not md.get("generateName"):
                raise Invalid(rt.kind, "", [Cause("metadata.name", "Required value: name or generateName is "
                                                                    "required", "FieldValueRequired")],
                              group=rt.group or None)
            with self._lock:
                md["name"] = md["generateName"][:248] + "".join(self._rng.choice(_ALPHANUM) for _ in range(5))
        if rt.kind in _STATUS_RESET_ON_CREATE:
            body.pop("status", None)
            if rt.kind == "Pod":
                body["status"] = {"phase": "Pending"}
            elif rt.kind == "Namespace":
                body["status"] = {"phase": "Active"}
                spec: Obj = body["spec"] if isinstance(body.get("spec"), dict) else {}
                spec.setdefault("finalizers", ["kubernetes"])
                body["spec"] = spec
        body = self._admit(strategy.prepare_for_create, rt, body)
        md = _meta(body)
        with self._lock:
            if rt.namespaced:
                self._check_writable(rt, md.get("namespace", ""), md["name"])
            if (md.get("namespace", ""), md["name"]) in self._store.table(rt):
                raise AlreadyExists(rt.plural, md["name"], group=rt.group or None)
            md["uid"] = self._uid()
            md["creationTimestamp"] = self._now()
            md["generation"] = 1
            for key in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
                md.pop(key, None)
            return _copy(self._write(rt, "ADDED", body))

    def update_raw(self, resource: ResourceLike, body: Obj, namespace: str | None = None,
                   subresource: str | None = None) -> Obj:
        rt = resource_for(resource)
        ns = self.namespace_for(rt, namespace, body)
        name = object_name(body)
        answer = self._react(Action("update", rt.group_resource, ns or "", name, subresource or "", body))
        if answer is not None:
            return answer
        if subresource == "scale":
            return self._update_scale(rt, ns, name, body)
        if subresource not in (None, "", "status", "finalize"):
            raise MethodNotAllowed(f"the server does not allow PUT on {rt.plural}/{subresource}")
        body = self._with_type(rt, _copy(body))
        self._check_namespace(rt, ns, body)
        with self._lock:
            if (ns or "", name) not in self._store.table(rt) and rt.kind in _CREATE_ON_UPDATE and not subresource:
                _meta(body).pop("resourceVersion", None)
                return self.create_raw(rt, body, ns)
            return self._update_locked(rt, ns, name, body, subresource or "")

    def _update_locked(self, rt: ResourceType, ns: str | None, name: str, body: Obj, subresource: str,
                       check_version: bool = True) -> Obj:
        old = self._existing(rt, ns, name)
        md = _meta(body)
        old_md = old["metadata"]
        if md.get("name") != name:
            raise BadRequest(f"the name of the object ({md.get('name')}) does not match the name on the URL "
                             f"({name})")
        if check_version and md.get("resourceVersion") and md["resourceVersion"] != old_md["resourceVersion"]:
            raise Conflict(rt.plural, name, _CONFLICT_MSG, group=rt.group or None)
        if md.get("uid") and md["uid"] != old_md.get("uid"):
            raise Conflict(rt.plural, name, f"Precondition failed: UID in precondition: {md['uid']}, UID in "
                                            f"object meta: {old_md.get('uid')}", group=rt.group or None)
        if subresource == "status":
            new = _copy(old)
            if "status" in body:
                new["status"] = body["status"]
            else:
                new.pop("status", None)
            new = self._admit(strategy.prepare_for_status_update, rt, new, _copy(old))
        elif subresource == "finalize":
            new = _copy(old)
            new.setdefault("spec", {})["finalizers"] = (body.get("spec") or {}).get("finalizers") or []
        else:
            new = body
            if "status" in rt.subresources:
                if "status" in old:
                    new["status"] = _copy(old["status"])
                else:
                    new.pop("status", None)
            if rt.kind == "Namespace":
                ns_spec: Obj = new["spec"] if isinstance(new.get("spec"), dict) else {}
                if "finalizers" in (old.get("spec") or {}):
                    ns_spec["finalizers"] = old["spec"]["finalizers"]
                new["spec"] = ns_spec
            new = self._admit(strategy.prepare_for_update, rt, new, _copy(old))
        new_md = _meta(new)
        for key in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
            if key in old_md:
                new_md[key] = old_md[key]
            else:
                new_md.pop(key, None)
        new_md["namespace"] = old_md.get("namespace")
        if not rt.namespaced:
            new_md.pop("namespace", None)
        new_md.pop("selfLink", None)
        generation = int(old_md.get("generation") or 1)
        bump = subresource == "" and strategy.spec_changed(rt, new, old)
        new_md["generation"] = generation + 1 if bump else generation
        new_md["resourceVersion"] = old_md["resourceVersion"]
        if new == old:  # no-op: nothing written, no event (as the real server)
            return _copy(old)
        if self._finished_deleting(rt, new):
            return _copy(self._write(rt, "DELETED", new, old))
        return _copy(self._write(rt, "MODIFIED", new, old))

    @staticmethod
    def _finished_deleting(rt: ResourceType, obj: Obj) -> bool:
        """An object being deleted goes when its last finalizer does (and its grace is over)."""
        md = obj["metadata"]
        if not md.get("deletionTimestamp") or md.get("finalizers"):
            return False
        if rt.kind == "Namespace" and (obj.get("spec") or {}).get("finalizers"):
            return False
        return md.get("deletionGracePeriodSeconds") in (0, None)

    def patch_raw(self, resource: ResourceLike, name: str, patch: PatchBody,
                  namespace: str | None = None, patch_type: PatchType = "merge",
                  subresource: str | None = None) -> Obj:
        rt = resource_for(resource)
        ns = self.namespace_for(rt, namespace)
        answer = self._react(Action("patch", rt.group_resource, ns or "", name, subresource or "", patch))
        if answer is not None:
            return answer
        if patch_type not in PATCH_CONTENT_TYPES:
            raise ValueError(f"patch_type must be one of {', '.join(PATCH_CONTENT_TYPES)}")
        with self._lock:
            old = self._existing(rt, ns, name)
            if subresource == "scale":
                scale = _apply_patch(self._scale_of(rt, old), patch, patch_type, "Scale")
                return self._update_scale(rt, ns, name, scale)
            if subresource not in (None, "", "status"):
                raise MethodNotAllowed(f"the server does not allow PATCH on {rt.plural}/{subresource}")
            new = _apply_patch(old, patch, patch_type, rt.kind)
            md = _meta(new)
            if md.get("name") != name or (rt.namespaced and md.get("namespace") != ns):
                raise BadRequest("a patch may not change metadata.name or metadata.namespace")
            # A resourceVersion in the patch is a precondition; otherwise the patch applies to
            # the current state and cannot conflict.
            patched_rv = md.get("resourceVersion")
            check = patched_rv != old["metadata"]["resourceVersion"]
            if check and patched_rv is None:
                md["resourceVersion"] = old["metadata"]["resourceVersion"]
                check = False
            return self._update_locked(rt, ns, name, new, subresource or "", check_version=check)

    def delete_raw(self, resource: ResourceLike, name: str, namespace: str | None = None,
                   propagation_policy: PropagationPolicy | None = None,
                   grace_period_seconds: int | None = None,
                   preconditions: dict[str, str] | None = None) -> Obj:
        rt = resource_for(resource)
        ns = self.namespace_for(rt, namespace)
        answer = self._react(Action("delete", rt.group_resource, ns or "", name, "",
                                    {"propagationPolicy": propagation_policy,
                                     "gracePeriodSeconds": grace_period_seconds}))
        if answer is not None:
            return answer
        if propagation_policy not in (None, "Orphan", "Background", "Foreground"):
            raise Invalid("DeleteOptions", "", [Cause("propagationPolicy", f'Unsupported value: '
                                                     f'"{propagation_policy}": supported values: "Foreground", '
                                                     '"Background", "Orphan"', "FieldValueNotSupported")])
        if grace_period_seconds is not None and grace_period_seconds < 0:
            raise Invalid("DeleteOptions", "", [Cause("gracePeriodSeconds", f"Invalid value: "
                                                     f"{grace_period_seconds}: must be greater than or equal "
                                                     "to 0")])
        if rt.kind == "Namespace" and name in _UNDELETABLE:
            raise Forbidden(f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                            kind="namespaces", name=name)
        with self._lock:
            out = self._delete_locked(rt, ns, name, propagation_policy, grace_period_seconds, preconditions)
            if rt.kind == "Namespace" and out.get("kind") == "Namespace":
                self._cascade(name)
            return out

    def _delete_locked(self, rt: ResourceType, ns: str | None, name: str, propagation_policy: str | None,
                       grace_period_seconds: int | None, preconditions: dict[str, str] | None) -> Obj:
        """One DELETE with the lock held (see delete_raw); the server's plan_delete rules."""
        old = self._existing(rt, ns, name)
        old_md = old["metadata"]
        pre = preconditions or {}
        if pre.get("uid") and pre["uid"] != old_md.get("uid"):
            raise Conflict(rt.plural, name, f"Precondition failed: UID in precondition: {pre['uid']}, UID "
                                            f"in object meta: {old_md.get('uid')}", group=rt.group or None)
        if pre.get("resourceVersion") and pre["resourceVersion"] != old_md.get("resourceVersion"):
            raise Conflict(rt.plural, name, f"Precondition failed: ResourceVersion in precondition: "
                                            f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                                            f"{old_md.get('resourceVersion')}", group=rt.group or None)
        finalizers = list(old_md.get("finalizers") or [])
        wanted = _finalizers_for(finalizers, propagation_policy)
        grace = self._grace_period(rt, old, grace_period_seconds)
        namespace_pending = rt.kind == "Namespace" and bool((old.get("spec") or {}).get("finalizers"))
        new = _copy(old)
        md = new["metadata"]
        if old_md.get("deletionTimestamp"):  # already being deleted: may shorten the grace
            changed = wanted != finalizers
            current = int(old_md.get("deletionGracePeriodSeconds") or 0)
            if grace < current:
                md["deletionGracePeriodSeconds"] = grace
                md["deletionTimestamp"] = timeutil.format_time(self._clock() + timedelta(seconds=grace))
                changed = True
            if min(grace, current) == 0 and not wanted and not namespace_pending:
                return self._remove(rt, name, old)
            if not changed:
                return _copy(old)
        else:
            if grace == 0 and not wanted and rt.kind != "Namespace":
                return self._remove(rt, name, old)
            md["deletionTimestamp"] = timeutil.format_time(self._clock() + timedelta(seconds=grace))
            md["deletionGracePeriodSeconds"] = grace
            md["generation"] = int(md.get("generation") or 1) + 1  # as Kubernetes, when deletion starts
            if rt.kind == "Namespace":
                new.setdefault("status", {})["phase"] = "Terminating"
        if wanted:
            md["finalizers"] = wanted
        return _copy(self._write(rt, "MODIFIED", new, old))

    def _cascade(self, namespace: str) -> None:
        """The server's namespace cascade: delete everything in a terminating namespace, then
        the namespace itself once nothing is left (bound pods wait for their kubelet)."""
        for rt in RESOURCES:
            if not rt.namespaced:
                continue
            for key in sorted(k for k in self._store.table(rt) if k[0] == namespace):
                if key in self._store.table(rt):
                    self._delete_locked(rt, namespace, key[1], None, None, None)
        self._finish_namespace(namespace)

    def _finish_namespace(self, namespace: str) -> None:
        ns_obj = self._store.table(_NAMESPACES).get(("", namespace))
        if ns_obj is None or not ns_obj["metadata"].get("deletionTimestamp"):
            return
        if any(k[0] == namespace for rt in RESOURCES if rt.namespaced for k in self._store.table(rt)):
            return
        final = _copy(ns_obj)
        final.setdefault("spec", {})["finalizers"] = []
        if not final["metadata"].get("finalizers"):
            self._write(_NAMESPACES, "DELETED", final, ns_obj)

    def _remove(self, rt: ResourceType, name: str, old: Obj) -> Obj:
        """Remove now; answer with the object (pods, namespaces, services) or a Status, as the server."""
        gone = self._write(rt, "DELETED", _copy(old), old)
        if rt.kind in _RETURN_DELETED:
            return _copy(gone)
        details: Obj = {"name": name, "kind": rt.plural, "uid": old["metadata"].get("uid", "")}
        if rt.group:
            details["group"] = rt.group
        return {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Success", "details": details}

    @staticmethod
    def _grace_period(rt: ResourceType, obj: Obj, requested: int | None) -> int:
        """Pods bound to a node and not terminated die gracefully; everything else at once."""
        if rt.kind != "Pod":
            return 0
        spec = obj.get("spec") or {}
        phase = (obj.get("status") or {}).get("phase")
        if not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
            return 0
        if requested is not None:
            return max(0, requested)
        default = spec.get("terminationGracePeriodSeconds")
        return 30 if default is None else int(default)

    def watch_raw(self, resource: ResourceLike, namespace: str | None = None,
                  resource_version: str | None = None, label_selector: str | None = None,
                  field_selector: str | None = None, timeout_seconds: int | None = None,
                  allow_bookmarks: bool = True) -> Watch[Obj]:
        rt = resource_for(resource)
        ns = namespace if rt.namespaced else None
        answer = self._react(Action("watch", rt.group_resource, ns or ""))
        if answer is not None:
            raise BadRequest("a reactor cannot answer a watch with an object")
        predicate = build_predicate(rt, label_selector, field_selector)

        def matches(obj: Obj | None) -> bool:
            if obj is None:
                return False
            if ns and (obj.get("metadata") or {}).get("namespace") != ns:
                return False
            return predicate is None or predicate(obj)

        initial: list[WatchEvent[Obj]] = []
        with self._lock:
            if resource_version in (None, "", "0"):
                position = self._revision
                table = self._store.table(rt)
                initial = [WatchEvent("ADDED", _copy(table[k])) for k in sorted(table) if matches(table[k])]
            else:
                try:
                    position = int(resource_version)  # type: ignore[arg-type]
                except ValueError:
                    raise BadRequest(f"invalid resource version: {resource_version!r}") from None
        deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
        watch: Watch[Obj]

        def close() -> None:
            with self._cond:
                self._cond.notify_all()

        def events() -> Iterator[WatchEvent[Obj]]:
            nonlocal position
            yield from initial
            while True:
                with self._cond:
                    while not watch.closed:
                        if position < self._compacted:
                            raise Gone(f"too old resource version: {position} ({self._compacted})")
                        if self._revision > position:
                            break
                        remaining = None if deadline is None else deadline - time.monotonic()
                        if remaining is not None and remaining <= 0:
                            break
                        self._cond.wait(remaining)
                    if watch.closed:
                        return
                    timed_out = self._revision <= position
                    batch = self._log[position + 1 - self._log_base:]
                    position = self._revision
                if timed_out:  # the server ends the stream with a bookmark of "now"
                    if allow_bookmarks:
                        yield WatchEvent("BOOKMARK", {"apiVersion": rt.api_version, "kind": rt.kind,
                                                      "metadata": {"resourceVersion": str(position)}})
                    return
                for change in batch:
                    if change.resource != rt.group_resource:
                        continue
                    ev = self._filter(change, matches)
                    if ev is not None:
                        yield ev

        watch = Watch(events(), close)
        return watch

    @staticmethod
    def _filter(change: _Change, matches: Callable[[Obj | None], bool]) -> WatchEvent[Obj] | None:
        """The event a watcher with this filter sees for a change (the server's semantics)."""
        now, before = matches(change.obj), matches(change.prev)
        if change.type == "ADDED":
            return WatchEvent("ADDED", _copy(change.obj)) if now else None
        if change.type == "DELETED":
            return WatchEvent("DELETED", _copy(change.obj)) if (now or before) else None
        if now and before:
            return WatchEvent("MODIFIED", _copy(change.obj))
        if now:
            return WatchEvent("ADDED", _copy(change.obj))
        if before:
            return WatchEvent("DELETED", _copy(change.obj))
        return None

    # ------------------------------------------------------------------ subresources
    def _bind(self, ns: str, name: str, body: Obj) -> Obj:
        target = body.get("target") or {}
        node = target.get("name")
        if not node:
            raise Invalid("Binding", name, [Cause("target.name", "Required value")])
        with self._lock:
            old = self._existing(resource_for("pods"), ns, name)
            if old["metadata"].get("deletionTimestamp"):
                raise Conflict("pods/binding", name, f"pod {name} is being deleted, cannot be assigned to a host")
            current = (old.get("spec") or {}).get("nodeName")
            if current:
                raise Conflict("pods/binding", name, f'pod {name} is already assigned to node "{current}"')
            new = _copy(old)
            new.setdefault("spec", {})["nodeName"] = node
            status = new.setdefault("status", {})
            conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
            conditions.append({"type": "PodScheduled", "status": "True", "lastTransitionTime": self._now()})
            status["conditions"] = conditions
            self._write(resource_for("pods"), "MODIFIED", new, old)
        return {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Success", "code": 201}

    @staticmethod
    def _scale_of(rt: ResourceType, obj: Obj) -> Obj:
        if "scale" not in rt.subresources:
            raise NotFound(rt.plural, str(obj["metadata"].get("name")), group=rt.group or None)
        md = obj["metadata"]
        spec = obj.get("spec") or {}
        return {"apiVersion": "autoscaling/v1", "kind": "Scale",
                "metadata": {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                             if k in md},
                "spec": {"replicas": spec.get("replicas", 1)},
                "status": {"replicas": (obj.get("status") or {}).get("replicas") or 0,
                           "selector": _selector_string(spec.get("selector"))}}

    def _update_scale(self, rt: ResourceType, ns: str | None, name: str, scale: Obj) -> Obj:
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise Invalid("Scale", name, [Cause("spec.replicas", f"Invalid value: {replicas!r}: must be greater "
                                                                  "than or equal to 0")], group="autoscaling")
        with self._lock:
            old = self._existing(rt, ns, name)
            self._scale_of(rt, old)
            rv = (scale.get("metadata") or {}).get("resourceVersion")
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise Conflict(rt.plural, name, _CONFLICT_MSG, group=rt.group or None)
            new = _copy(old)
            new.setdefault("spec", {})["replicas"] = replicas
            stored = self._update_locked(rt, ns, name, new, "", check_version=False)
            return self._scale_of(rt, stored)

    # ------------------------------------------------------------------ logs and paths
    def log(self, namespace: str, pod: str, container: str | None = None, follow: bool = False,
            tail_lines: int | None = None, previous: bool = False,
            since_seconds: int | None = None, timestamps: bool = False) -> Iterator[bytes] | str:
        answer = self._react(Action("get", "pods", namespace, pod, "log"))
        with self._lock:
            obj = self._existing(resource_for("pods"), namespace, pod)
        containers = [c.get("name") for c in (obj.get("spec") or {}).get("containers") or []]
        if container and container not in containers:
            raise BadRequest(f"container {container} is not valid for pod {pod}")
        text = (answer or {}).get("log") if answer is not None else None
        if text is None:
            text = self._logs.get((namespace, pod, container or ""))
            if text is None and len(containers) == 1:
                text = self._logs.get((namespace, pod, containers[0] or ""), "")
        text = text or ""
        if tail_lines is not None:
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-tail_lines:]) if tail_lines > 0 else ""
        if follow:
            return iter([text.encode()] if text else [])
        return text

    def request(self, method: str, path: str, params: dict[str, Any] | None = None,
                body: Any = None, headers: dict[str, str] | None = None) -> Any:
        """Routes resource paths to the methods above, plus /version, /healthz, /readyz, /api, /apis."""
        params = params or {}
        path = "/" + path.strip("/")
        if path == "/version":
            return {"major": "1", "minor": "32", "gitVersion": "v1.32.0-mkube-fake", "platform": "fake"}
        if path in ("/healthz", "/readyz", "/livez"):
            return "ok"
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"]}
        if path == "/apis":
            groups: dict[str, list[str]] = {}
            for r in RESOURCES:
                if r.group and r.version not in groups.setdefault(r.group, []):
                    groups[r.group].append(r.version)
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                 "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]}}
                for g, vs in groups.items()]}
        rt, ns, name, sub = self._route(path)
        if rt is None:
            group_version = path.removeprefix("/api/").removeprefix("/apis/")
            return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
                    "resources": [{"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                                   "kind": r.kind, "verbs": list(r.verbs), "shortNames": list(r.short_names)}
                                  for r in RESOURCES if r.api_version == group_version]}
        method = method.upper()
        if method == "GET":
            if sub == "log":
                out = self.log(ns or "", name or "", params.get("container"), tail_lines=params.get("tailLines"))
                return out if isinstance(out, str) else b"".join(out).decode()
            if name:
                return self.get_raw(rt, name, ns, sub)
            if params.get("watch") in (True, "true", "1", 1):
                raise BadRequest("use watch_raw() for watches")
            return self.list_raw(rt, ns, params.get("labelSelector"), params.get("fieldSelector"),
                                 int(params["limit"]) if params.get("limit") else None, params.get("continue"))
        if method == "POST":
            return self.create_raw(rt, body or {}, ns, name=name, subresource=sub)
        if method == "PUT" and name:
            return self.update_raw(rt, body or {}, ns, sub)
        if method == "PATCH" and name:
            ctype = (headers or {}).get("Content-Type", PATCH_CONTENT_TYPES["merge"])
            kinds = {v: k for k, v in PATCH_CONTENT_TYPES.items()}
            if ctype not in kinds:
                raise ApiError(message=f"unsupported patch content type {ctype}", code=415,
                               reason="UnsupportedMediaType")
            return self.patch_raw(rt, name, body, ns, kinds[ctype], sub)  # type: ignore[arg-type]
        if method == "DELETE" and name:
            opts = body or {}
            return self.delete_raw(rt, name, ns, opts.get("propagationPolicy"),
                                   opts.get("gracePeriodSeconds", params.get("gracePeriodSeconds")),
                                   opts.get("preconditions"))
        raise MethodNotAllowed(f"{method} is not supported on {path}")

    @staticmethod
    def _route(path: str) -> tuple[ResourceType | None, str | None, str | None, str | None]:
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise NotFound("", path, message=f"the server could not find the requested resource ({path})")
        if not rest:
            return None, None, None, None
        ns = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            inner = by_path(group, version, rest[2])
            if inner is not None and inner.namespaced:
                ns, rest = rest[1], rest[2:]
        rt = by_path(group, version, rest[0])
        if rt is None or len(rest) > 3:
            raise NotFound("", path, message=f"the server could not find the requested resource ({path})")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        return rt, ns, name, sub
