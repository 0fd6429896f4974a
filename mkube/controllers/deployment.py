"""Deployment controller: one ReplicaSet per pod template, rolled out as the strategy says.

Per sync (level-triggered, like Kubernetes' deployment controller):
1. claim ReplicaSets (adopt matching orphans, release non-matching ones);
2. the *new* ReplicaSet is the one whose template equals the Deployment's (ignoring
   the pod-template-hash label); it gets revision max(old revisions) + 1 — so a
   rollback (the template set back to an old ReplicaSet's, as `kubectl rollout undo`
   does) re-uses that ReplicaSet, scales it up and gives it the newest revision;
   if none exists it is created as `<deployment>-<pod-template-hash>`;
3. paused: only resize; a changed `spec.replicas` during a rollout is spread over the
   active ReplicaSets in proportion (Kubernetes' proportional scaling);
4. RollingUpdate: scale the new ReplicaSet up within maxSurge, old ones down within
   maxUnavailable (deployment_util); Recreate: old ones to 0, wait until their pods are
   gone, then the new one to full size;
5. when complete, delete old ReplicaSets with 0 replicas beyond revisionHistoryLimit;
6. status (/status): counts, Available, Progressing (with ProgressDeadlineExceeded
   after progressDeadlineSeconds without progress), ReplicaFailure.
The `deployment.kubernetes.io/revision` annotation of the Deployment is kept equal to
its new ReplicaSet's (a metadata patch; metadata is not writable through /status).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from mkube.api.errors import is_already_exists, is_not_found
from mkube.api.selectors import Selector, selector_from_label_selector
from mkube.api.types import (
    Deployment,
    DeploymentCondition,
    DeploymentStatus,
    LabelSelector,
    ObjectMeta,
    Pod,
    ReplicaSet,
    ReplicaSetSpec,
)
from mkube.controllers import deployment_util as du
from mkube.controllers.base import Context, Controller
from mkube.controllers.refs import (
    CONTROLLER_INDEX,
    claim,
    controller_index,
    controller_ref,
    orphan_key,
    resolve_controller_ref,
)

log = logging.getLogger(__name__)


class _View:
    """The ReplicaSets of one sync, updated in place after every write (so a second
    decision in the same sync never works on an object we already replaced)."""

    def __init__(self, rss: Sequence[ReplicaSet]) -> None:
        self.rss = list(rss)

    def replace(self, rs: ReplicaSet) -> None:
        for i, cur in enumerate(self.rss):
            if cur.metadata.uid == rs.metadata.uid:
                self.rss[i] = rs
                return
        self.rss.append(rs)

    def current(self, rs: ReplicaSet | None) -> ReplicaSet | None:
        if rs is None:
            return None
        for cur in self.rss:
            if cur.metadata.uid == rs.metadata.uid:
                return cur
        return rs


class DeploymentController(Controller):
    """See the module docstring."""

    name = "deployment"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx, ctx.options.deployment_workers)
        self.d_informer = self.watch(Deployment, self.enqueue, self._update_deployment, self.enqueue)
        self.rs_informer = self.watch(ReplicaSet, self._add_rs, self._update_rs, self._delete_rs)
        self.rs_informer.add_index(CONTROLLER_INDEX, controller_index)
        self.pod_informer = self.watch(Pod, on_update=self._update_pod, on_delete=self._delete_pod)
        self.pod_informer.add_index(CONTROLLER_INDEX, controller_index)

    # ------------------------------------------------------------------ handlers
    def _update_deployment(self, old: Deployment, new: Deployment) -> None:
        self.enqueue(new)

    def _owner_of(self, rs: ReplicaSet) -> Deployment | None:
        owner: Deployment | None = resolve_controller_ref(rs, "Deployment", self.d_informer)
        return owner

    def _matching_deployments(self, rs: ReplicaSet) -> list[Deployment]:
        labels = rs.metadata.labels or {}
        if not labels:
            return []
        out = []
        for d in self.d_informer.list(rs.metadata.namespace or ""):
            try:
                if selector_from_label_selector(d.spec.selector).matches(labels):
                    out.append(d)
            except ValueError:
                continue
        return out

    def _add_rs(self, rs: ReplicaSet) -> None:
        if rs.metadata.deletion_timestamp is not None:
            self._delete_rs(rs)
            return
        if rs.metadata.controller_ref() is not None:
            d = self._owner_of(rs)
            if d is not None:
                self.enqueue(d)
            return
        for d in self._matching_deployments(rs):
            self.enqueue(d)

    def _update_rs(self, old: ReplicaSet, new: ReplicaSet) -> None:
        if old.metadata.resource_version == new.metadata.resource_version:
            return
        old_ref, new_ref = old.metadata.controller_ref(), new.metadata.controller_ref()
        ref_changed = (old_ref.uid if old_ref else None) != (new_ref.uid if new_ref else None)
        if ref_changed and old_ref is not None:
            d = self._owner_of(old)
            if d is not None:
                self.enqueue(d)
        if new_ref is not None:
            d = self._owner_of(new)
            if d is not None:
                self.enqueue(d)
            return
        if ref_changed or old.metadata.labels != new.metadata.labels:
            for d in self._matching_deployments(new):
                self.enqueue(d)

    def _delete_rs(self, rs: ReplicaSet) -> None:
        d = self._owner_of(rs)
        if d is not None:
            self.enqueue(d)

    def _deployment_of_pod(self, pod: Pod) -> Deployment | None:
        ref = pod.metadata.controller_ref()
        if ref is None or ref.kind != "ReplicaSet":
            return None
        rs = self.rs_informer.get_by_name(ref.name or "", pod.metadata.namespace)
        if rs is None or rs.metadata.uid != ref.uid:
            return None
        return self._owner_of(rs)

    def _update_pod(self, old: Pod, new: Pod) -> None:
        """A pod starts being deleted: a rolling update may now grow the new ReplicaSet."""
        if old.metadata.deletion_timestamp is None and new.metadata.deletion_timestamp is not None:
            d = self._deployment_of_pod(new)
            if d is not None:
                self.enqueue(d)

    def _delete_pod(self, pod: Pod) -> None:
        """Recreate waits for old pods to be gone: look again when one goes."""
        d = self._deployment_of_pod(pod)
        if d is not None and not du.is_rolling_update(d):
            self.enqueue(d)

    # ------------------------------------------------------------------ sync
    def sync(self, key: str) -> None:
        cached = self.d_informer.get(key)
        if cached is None:
            return
        d = cached.copy_deep()
        try:
            selector = selector_from_label_selector(d.spec.selector)
        except ValueError as e:
            log.warning("deployment %s: invalid selector: %s", key, e)
            return
        if selector.empty() or selector.is_nothing():
            self.event(d, "Warning", "SelectingAll",
                       "This deployment is selecting all pods. A non-empty selector is required.")
            if (d.status.observed_generation or 0) < (d.metadata.generation or 0):
                d.status.observed_generation = d.metadata.generation
                self.client.update_status(d)
            return
        rss = self._replicasets_for(d, selector)
        view = _View(rss)
        if d.metadata.deletion_timestamp is not None:
            self._sync_status_only(d, view)
            return
        d = self._check_paused_conditions(d)
        if d.spec.paused:
            self._sync_scale(d, view)
            return
        d, scaling = self._is_scaling_event(d, view)
        if scaling:
            self._sync_scale(d, view)
            return
        if du.is_rolling_update(d):
            self._rollout_rolling(d, view)
        else:
            self._rollout_recreate(d, view)

    def _replicasets_for(self, d: Deployment, selector: Selector) -> list[ReplicaSet]:
        ns = d.metadata.namespace or ""
        candidates = (self.rs_informer.by_index(CONTROLLER_INDEX, d.metadata.uid or "")
                      + self.rs_informer.by_index(CONTROLLER_INDEX, orphan_key(ns)))
        claimed, errors = claim(d, selector, candidates, self.client, lambda: self._fresh(d))
        if errors:
            raise errors[0]
        return claimed

    def _fresh(self, d: Deployment) -> Deployment | None:
        try:
            return self.client.get(Deployment, d.metadata.name or "", d.metadata.namespace)
        except Exception as e:
            if is_not_found(e):
                return None
            raise

    # ------------------------------------------------------------------ new/old ReplicaSets
    def _get_all(self, d: Deployment, view: _View, create: bool
                 ) -> tuple[Deployment, ReplicaSet | None, list[ReplicaSet]]:
        """(deployment, new ReplicaSet or None, old ReplicaSets), syncing revisions
        (getAllReplicaSetsAndSyncRevision)."""
        new_rs = du.find_new_rs(d, view.rss)
        old_rss = [rs for rs in view.rss if new_rs is None or rs.metadata.uid != new_rs.metadata.uid]
        new_revision = du.max_revision(old_rss) + 1
        if new_rs is not None:
            rs_copy = new_rs.copy_deep()
            changed, promoted = du.set_new_rs_annotations(d, rs_copy, new_revision, exists=True)
            if changed or rs_copy.spec.min_ready_seconds != d.spec.min_ready_seconds:
                rs_copy.spec.min_ready_seconds = d.spec.min_ready_seconds
                new_rs = self.client.update(rs_copy)
                view.replace(new_rs)
                if promoted is not None:
                    self.event(d, "Normal", "DeploymentRollback",
                               f"Rolled back deployment {d.metadata.name!r} to revision {promoted}")
            d = self._set_revision(d, du.revision_of(new_rs))
            if du.progress_deadline(d) is not None and du.get_condition(d.status, du.PROGRESSING) is None:
                du.set_condition(d.status, du.new_condition(du.PROGRESSING, "True", du.FOUND_NEW_RS,
                                                            f'Found new replica set "{new_rs.metadata.name}"'))
                d = self.client.update_status(d)
            return d, new_rs, old_rss
        if not create:
            return d, None, old_rss
        return self._create_new_rs(d, view, old_rss, new_revision)

    def _create_new_rs(self, d: Deployment, view: _View, old_rss: list[ReplicaSet], new_revision: int
                       ) -> tuple[Deployment, ReplicaSet | None, list[ReplicaSet]]:
        template = d.spec.template.copy_deep()
        pod_hash = du.compute_hash(template, d.status.collision_count)
        template.metadata.labels = {**(template.metadata.labels or {}), du.POD_TEMPLATE_HASH_LABEL: pod_hash}
        base_selector = d.spec.selector or LabelSelector()
        selector = LabelSelector(
            match_labels={**(base_selector.match_labels or {}), du.POD_TEMPLATE_HASH_LABEL: pod_hash},
            match_expressions=[e.copy_deep() for e in base_selector.match_expressions or []] or None)
        rs = ReplicaSet(
            metadata=ObjectMeta(name=f"{d.metadata.name}-{pod_hash}", namespace=d.metadata.namespace,
                                labels=dict(template.metadata.labels), owner_references=[controller_ref(d)]),
            spec=ReplicaSetSpec(replicas=0, min_ready_seconds=d.spec.min_ready_seconds, selector=selector,
                                template=template))
        rs.spec.replicas = du.new_rs_replicas(d, old_rss, rs)
        du.set_new_rs_annotations(d, rs, new_revision, exists=False)
        already_exists = False
        try:
            created = self.client.create(rs, d.metadata.namespace)
        except Exception as e:
            if not is_already_exists(e):
                self.event(d, "Warning", du.FAILED_RS_CREATE, f"Failed to create new replica set "
                                                             f"{rs.metadata.name!r}: {e}")
                raise
            existing = self.client.get(ReplicaSet, rs.metadata.name or "", d.metadata.namespace)
            ref = existing.metadata.controller_ref()
            if ref is not None and ref.uid == d.metadata.uid and du.equal_ignore_hash(existing.spec.template,
                                                                                       d.spec.template):
                created, already_exists = existing, True  # ours; the cache had not seen it yet
            else:
                # a different template hashes to the same name: bump collisionCount and retry
                d.status.collision_count = (d.status.collision_count or 0) + 1
                self.client.update_status(d)
                raise
        view.replace(created)
        if not already_exists and (created.spec.replicas or 0) > 0:
            self.event(d, "Normal", "ScalingReplicaSet",
                       f"Scaled up replica set {created.metadata.name} to {created.spec.replicas}")
        d = self._set_revision(d, new_revision)
        if not already_exists and du.progress_deadline(d) is not None:
            du.set_condition(d.status, du.new_condition(du.PROGRESSING, "True", du.NEW_RS_CREATED,
                                                        f'Created new replica set "{created.metadata.name}"'))
            d = self.client.update_status(d)
        return d, created, old_rss

    def _set_revision(self, d: Deployment, revision: int) -> Deployment:
        """Keep the Deployment's revision annotation equal to its new ReplicaSet's."""
        if revision <= 0 or (d.metadata.annotations or {}).get(du.REVISION_ANNOTATION) == str(revision):
            return d
        patched = self.client.patch(Deployment, d.metadata.name or "",
                                    {"metadata": {"annotations": {du.REVISION_ANNOTATION: str(revision)}}},
                                    d.metadata.namespace)
        patched.status = d.status  # keep the status this sync is computing
        return patched

    # ------------------------------------------------------------------ scaling
    def _scale_rs(self, rs: ReplicaSet, size: int, d: Deployment, view: _View) -> tuple[bool, ReplicaSet]:
        """Set rs.spec.replicas (and the desired/max annotations). Returns (resized, rs)."""
        rs = view.current(rs) or rs
        old = rs.spec.replicas or 0
        resize = old != size
        max_total = du.replicas_of(d) + du.max_surge(d)
        if not resize and not du.replicas_annotations_need_update(rs, du.replicas_of(d), max_total):
            return False, rs
        new = rs.copy_deep()
        new.spec.replicas = size
        du.set_replicas_annotations(new, du.replicas_of(d), max_total)
        updated = self.client.update(new)
        view.replace(updated)
        if resize:
            op = "up" if size > old else "down"
            self.event(d, "Normal", "ScalingReplicaSet", f"Scaled {op} replica set {rs.metadata.name} to {size}")
        return resize, updated

    def _is_scaling_event(self, d: Deployment, view: _View) -> tuple[Deployment, bool]:
        d, new_rs, old_rss = self._get_all(d, view, create=False)
        for rs in du.filter_active([*old_rss, new_rs]):
            desired = du.desired_replicas_annotation(rs)
            if desired is not None and desired != du.replicas_of(d):
                return d, True
        return d, False

    def _scale(self, d: Deployment, new_rs: ReplicaSet | None, old_rss: list[ReplicaSet], view: _View) -> None:
        only = du.find_active_or_latest(new_rs, old_rss)
        if only is not None:
            if (only.spec.replicas or 0) != du.replicas_of(d):
                self._scale_rs(only, du.replicas_of(d), d, view)
            return
        if du.is_saturated(d, new_rs):
            for rs in du.filter_active(old_rss):
                self._scale_rs(rs, 0, d, view)
            return
        if du.is_rolling_update(d):
            sizes, _ = du.plan_proportional_scale(d, new_rs, old_rss)
            for rs in du.filter_active([*old_rss, new_rs]):
                self._scale_rs(rs, sizes.get(rs.metadata.name or "", rs.spec.replicas or 0), d, view)

    def _sync_scale(self, d: Deployment, view: _View) -> None:
        """Paused deployments and resizes: scale, clean up (when paused), write status."""
        d, new_rs, old_rss = self._get_all(d, view, create=False)
        self._scale(d, new_rs, old_rss, view)
        new_rs = view.current(new_rs)
        old_rss = [view.current(rs) or rs for rs in old_rss]
        if d.spec.paused:
            self._cleanup(d, old_rss)
        self._write_status(d, du.calculate_status([*old_rss, new_rs], new_rs, d))

    def _sync_status_only(self, d: Deployment, view: _View) -> None:
        d, new_rs, old_rss = self._get_all(d, view, create=False)
        self._write_status(d, du.calculate_status([*old_rss, new_rs], new_rs, d))

    def _write_status(self, d: Deployment, status: DeploymentStatus) -> Deployment:
        if status.to_dict() == d.status.to_dict():
            return d
        d.status = status
        return self.client.update_status(d)

    # ------------------------------------------------------------------ rollouts
    def _rollout_rolling(self, d: Deployment, view: _View) -> None:
        d, new_rs, old_rss = self._get_all(d, view, create=True)
        assert new_rs is not None
        all_rss = [*old_rss, new_rs]
        # 1. scale the new ReplicaSet up (or down, if the deployment shrank)
        desired = du.replicas_of(d)
        new_size = new_rs.spec.replicas or 0
        if new_size != desired:
            target = desired if new_size > desired else du.new_rs_replicas(d, all_rss, new_rs,
                                                                           self._active_pods(all_rss))
            scaled, _ = self._scale_rs(new_rs, target, d, view)
            if scaled:
                self._sync_rollout_status(d, view, new_rs, old_rss)
                return
        # 2. scale old ReplicaSets down within maxUnavailable
        new_rs = view.current(new_rs) or new_rs
        plan = du.plan_old_scale_down(d, [*old_rss, new_rs], du.filter_active(old_rss), new_rs)
        if plan:
            by_name = {rs.metadata.name: rs for rs in old_rss}
            for name, size in plan.items():
                self._scale_rs(by_name[name], size, d, view)
            self._sync_rollout_status(d, view, new_rs, old_rss)
            return
        if du.deployment_complete(d, d.status):
            self._cleanup(d, old_rss)
        self._sync_rollout_status(d, view, new_rs, old_rss)

    def _rollout_recreate(self, d: Deployment, view: _View) -> None:
        d, new_rs, old_rss = self._get_all(d, view, create=False)
        scaled_down = False
        for rs in du.filter_active(old_rss):
            resized, _ = self._scale_rs(rs, 0, d, view)
            scaled_down = scaled_down or resized
        if scaled_down:
            self._sync_rollout_status(d, view, new_rs, old_rss)
            return
        if self._old_pods_running(new_rs, old_rss):
            self._sync_rollout_status(d, view, new_rs, old_rss)
            return
        if new_rs is None:
            d, new_rs, old_rss = self._get_all(d, view, create=True)
            assert new_rs is not None
        if (new_rs.spec.replicas or 0) != du.replicas_of(d):
            self._scale_rs(new_rs, du.replicas_of(d), d, view)
            self._sync_rollout_status(d, view, new_rs, old_rss)
            return
        if du.deployment_complete(d, d.status):
            self._cleanup(d, old_rss)
        self._sync_rollout_status(d, view, new_rs, old_rss)

    def _active_pods(self, rss: Sequence[ReplicaSet]) -> dict[str, int]:
        """ReplicaSet uid -> its pods not being deleted and not finished (pod cache)."""
        out: dict[str, int] = {}
        for rs in rss:
            uid = rs.metadata.uid or ""
            out[uid] = sum(1 for p in self.pod_informer.by_index(CONTROLLER_INDEX, uid)
                           if p.metadata.deletion_timestamp is None and p.status.phase not in ("Failed", "Succeeded"))
        return out

    def _old_pods_running(self, new_rs: ReplicaSet | None, old_rss: list[ReplicaSet]) -> bool:
        """Any pod of an old ReplicaSet still there and not finished (even if terminating)."""
        if du.actual_count(old_rss) > 0:
            return True
        for rs in old_rss:
            for pod in self.pod_informer.by_index(CONTROLLER_INDEX, rs.metadata.uid or ""):
                if pod.status.phase not in ("Failed", "Succeeded"):
                    return True
        return False

    def _cleanup(self, d: Deployment, old_rss: list[ReplicaSet]) -> None:
        """Delete the oldest unused ReplicaSets beyond revisionHistoryLimit."""
        alive = [rs for rs in old_rss if rs.metadata.deletion_timestamp is None]
        excess = len(alive) - du.revision_history_limit(d)
        if excess <= 0:
            return
        for rs in du.by_revision(alive)[:excess]:
            if ((rs.status.replicas or 0) != 0 or (rs.spec.replicas or 0) != 0
                    or (rs.metadata.generation or 0) > (rs.status.observed_generation or 0)):
                continue
            try:
                self.client.delete(ReplicaSet, rs.metadata.name or "", rs.metadata.namespace,
                                   preconditions={"uid": rs.metadata.uid or ""})
            except Exception as e:
                if not is_not_found(e):
                    raise

    # ------------------------------------------------------------------ status
    def _check_paused_conditions(self, d: Deployment) -> Deployment:
        if du.progress_deadline(d) is None:
            return d
        cond = du.get_condition(d.status, du.PROGRESSING)
        if cond is not None and cond.reason == du.TIMED_OUT:
            return d
        paused_cond = cond is not None and cond.reason == du.PAUSED
        if d.spec.paused and not paused_cond:
            du.set_condition(d.status, du.new_condition(du.PROGRESSING, "Unknown", du.PAUSED, "Deployment is paused"))
        elif not d.spec.paused and paused_cond:
            du.set_condition(d.status, du.new_condition(du.PROGRESSING, "Unknown", du.RESUMED,
                                                        "Deployment is resumed"))
        else:
            return d
        return self.client.update_status(d)

    def _sync_rollout_status(self, d: Deployment, view: _View, new_rs: ReplicaSet | None,
                             old_rss: list[ReplicaSet]) -> None:
        new_rs = view.current(new_rs)
        all_rss = [*(view.current(rs) or rs for rs in old_rss), new_rs]
        status = du.calculate_status(all_rss, new_rs, d)
        deadline = du.progress_deadline(d)
        if deadline is None:
            du.remove_condition(status, du.PROGRESSING)
        current = du.get_condition(d.status, du.PROGRESSING)
        complete = (status.replicas == status.updated_replicas and current is not None
                    and current.reason == du.NEW_RS_AVAILABLE)
        name = new_rs.metadata.name if new_rs is not None else None
        subject = f'ReplicaSet "{name}"' if name else f'Deployment "{d.metadata.name}"'
        if deadline is not None and not complete:
            if du.deployment_complete(d, status):
                du.set_condition(status, du.new_condition(du.PROGRESSING, "True", du.NEW_RS_AVAILABLE,
                                                          f"{subject} has successfully progressed."))
            elif du.deployment_progressing(d, status):
                cond = du.new_condition(du.PROGRESSING, "True", du.RS_UPDATED, f"{subject} is progressing.")
                if current is not None and current.status == "True":
                    cond.last_transition_time = current.last_transition_time
                du.remove_condition(status, du.PROGRESSING)
                du.set_condition(status, cond)
            elif du.deployment_timed_out(d, status):
                du.set_condition(status, du.new_condition(du.PROGRESSING, "False", du.TIMED_OUT,
                                                          f"{subject} has timed out progressing."))
        failure = self._replica_failure(all_rss)
        if failure is not None:
            du.set_condition(status, failure)
        else:
            du.remove_condition(status, du.REPLICA_FAILURE)
        if status.to_dict() == d.status.to_dict():
            wait = du.seconds_until_deadline(d, status)
            if wait is not None:
                self.enqueue_after(d, wait)
            return
        d = self._write_status(d, status)
        wait = du.seconds_until_deadline(d, status)
        if wait is not None:
            self.enqueue_after(d, wait)

    @staticmethod
    def _replica_failure(rss: Sequence[ReplicaSet | None]) -> DeploymentCondition | None:
        for rs in rss:
            if rs is None:
                continue
            for cond in rs.status.conditions or []:
                if cond.type == "ReplicaFailure" and cond.status == "True":
                    return du.new_condition(du.REPLICA_FAILURE, "True", cond.reason or "", cond.message or "")
        return None
