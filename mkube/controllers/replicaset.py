"""ReplicaSet controller: keep `spec.replicas` active pods matching the selector.

- Pods are created from the template with `generateName: <rs>-` (the API server adds
  5 random characters) and an ownerReference (controller=true, blockOwnerDeletion=true),
  in slow-start batches of 1, 2, 4, ... so that a failing create (quota, invalid
  template) fails once, not 500 times.
- Expectations: after creating or deleting pods the controller waits until its informer
  has observed them (or `expectations_ttl` passed) before it counts again, so a stale
  cache never makes it create or delete twice.
- Scale-down deletes the least valuable pods first (podutil.pods_to_delete).
- Matching orphans are adopted, owned pods whose labels stopped matching are released.
- Status (/status): replicas, fullyLabeledReplicas, readyReplicas, availableReplicas
  (ready for minReadySeconds), observedGeneration, and a ReplicaFailure condition when
  creating or deleting failed. Failed/Succeeded pods and pods being deleted do not count.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from mkube.api.errors import is_conflict, is_not_found
from mkube.api.selectors import Selector, selector_from_label_selector, selector_from_set
from mkube.api.timeutil import now_str
from mkube.api.types import ObjectMeta, Pod, ReplicaSet, ReplicaSetCondition, ReplicaSetStatus
from mkube.client.objects import key_of
from mkube.controllers import podutil
from mkube.controllers.base import Context, Controller, split_key
from mkube.controllers.expectations import Expectations
from mkube.controllers.refs import (
    CONTROLLER_INDEX,
    claim,
    controller_index,
    controller_ref,
    orphan_key,
    resolve_controller_ref,
)

log = logging.getLogger(__name__)

SLOW_START_INITIAL_BATCH = 1


def slow_start_batch(count: int, initial: int, fn: Callable[[], None], pool: ThreadPoolExecutor) -> tuple[int, Exception | None]:
    """Call `fn` `count` times in batches of initial, 2*initial, ... run in parallel; stop
    after the first batch with a failure. Returns (successes, first error)."""
    done = 0
    batch = min(count, initial)
    while batch > 0:
        futures = [pool.submit(fn) for _ in range(batch)]
        errors: list[Exception] = []
        for f in futures:
            e = f.exception()
            if e is not None:
                errors.append(e if isinstance(e, Exception) else RuntimeError(str(e)))
        done += batch - len(errors)
        if errors:
            return done, errors[0]
        count -= batch
        batch = min(count, 2 * batch)
    return done, None


def pod_from_template(rs: ReplicaSet) -> Pod:
    """A new pod of `rs`: template labels/annotations/spec, generateName, controller ref."""
    template = rs.spec.template.copy_deep()
    tm = template.metadata
    return Pod(
        metadata=ObjectMeta(generate_name=f"{rs.metadata.name}-", namespace=rs.metadata.namespace,
                            labels=dict(tm.labels or {}) or None, annotations=dict(tm.annotations or {}) or None,
                            finalizers=list(tm.finalizers or []) or None,
                            owner_references=[controller_ref(rs)]),
        spec=template.spec,
    )


def calculate_status(rs: ReplicaSet, pods: list[Pod], manage_error: Exception | None) -> ReplicaSetStatus:
    """The status `pods` (the claimed active pods) imply."""
    template_selector = selector_from_set(rs.spec.template.metadata.labels)
    fully_labeled = ready = available = 0
    at = podutil.now()
    for pod in pods:
        if template_selector.matches(pod.metadata.labels):
            fully_labeled += 1
        if podutil.is_pod_ready(pod):
            ready += 1
            if podutil.is_pod_available(pod, rs.spec.min_ready_seconds, at):
                available += 1
    status = ReplicaSetStatus(replicas=len(pods), fully_labeled_replicas=fully_labeled, ready_replicas=ready,
                              available_replicas=available, observed_generation=rs.status.observed_generation,
                              conditions=[c.copy_deep() for c in rs.status.conditions or []] or None)
    failure = next((c for c in status.conditions or [] if c.type == "ReplicaFailure"), None)
    if manage_error is not None and failure is None:
        diff = len(pods) - (rs.spec.replicas or 0)
        reason = "FailedCreate" if diff < 0 else "FailedDelete"
        cond = ReplicaSetCondition(type="ReplicaFailure", status="True", reason=reason, message=str(manage_error),
                                   last_transition_time=now_str())
        status.conditions = [*(status.conditions or []), cond]
    elif manage_error is None and failure is not None:
        status.conditions = [c for c in status.conditions or [] if c.type != "ReplicaFailure"] or None
    return status


class ReplicaSetController(Controller):
    """See the module docstring."""

    name = "replicaset"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx, ctx.options.replicaset_workers)
        self.expectations = Expectations(ttl=ctx.options.expectations_ttl)
        self.burst = ctx.options.burst_replicas
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="rs-pods")
        self._lock = threading.Lock()
        self.rs_informer = self.watch(ReplicaSet, self._add_rs, self._update_rs, self._delete_rs)
        self.rs_informer.add_index(CONTROLLER_INDEX, controller_index)
        self.pod_informer = self.watch(Pod, self._add_pod, self._update_pod, self._delete_pod)
        self.pod_informer.add_index(CONTROLLER_INDEX, controller_index)

    def stop(self, timeout: float = 5.0) -> None:
        super().stop(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ handlers
    def _add_rs(self, rs: ReplicaSet) -> None:
        self.enqueue(rs)

    def _update_rs(self, old: ReplicaSet, new: ReplicaSet) -> None:
        if old.metadata.uid != new.metadata.uid:
            self._delete_rs(old)
        self.enqueue(new)

    def _delete_rs(self, rs: ReplicaSet) -> None:
        self.expectations.delete(rs.key)
        self.enqueue(rs)

    def _owner_of(self, pod: Pod) -> ReplicaSet | None:
        owner: ReplicaSet | None = resolve_controller_ref(pod, "ReplicaSet", self.rs_informer)
        return owner

    def _matching_rss(self, pod: Pod) -> list[ReplicaSet]:
        labels = pod.metadata.labels or {}
        if not labels:
            return []
        return [rs for rs in self.rs_informer.list(pod.metadata.namespace or "")
                if selector_from_label_selector(rs.spec.selector).matches(labels)]

    def _add_pod(self, pod: Pod) -> None:
        if pod.metadata.deletion_timestamp is not None:
            self._delete_pod(pod)  # a restarted controller sees a pod already being deleted
            return
        if pod.metadata.controller_ref() is not None:
            rs = self._owner_of(pod)
            if rs is not None:
                self.expectations.creation_observed(rs.key)
                self.enqueue(rs)
            return
        for rs in self._matching_rss(pod):
            self.enqueue(rs)

    def _update_pod(self, old: Pod, new: Pod) -> None:
        if old.metadata.resource_version == new.metadata.resource_version:
            return  # periodic resync: the ReplicaSets resync themselves
        labels_changed = old.metadata.labels != new.metadata.labels
        if new.metadata.deletion_timestamp is not None:
            self._delete_pod(new)
            if labels_changed:
                self._delete_pod(old)
            return
        old_ref, new_ref = old.metadata.controller_ref(), new.metadata.controller_ref()
        ref_changed = (old_ref.uid if old_ref else None) != (new_ref.uid if new_ref else None)
        if ref_changed and old_ref is not None:
            old_rs = self._owner_of(old)
            if old_rs is not None:
                self.enqueue(old_rs)
        if new_ref is not None:
            rs = self._owner_of(new)
            if rs is None:
                return
            self.enqueue(rs)
            min_ready = rs.spec.min_ready_seconds or 0
            if min_ready > 0 and not podutil.is_pod_ready(old) and podutil.is_pod_ready(new):
                self.enqueue_after(rs, min_ready + 0.5)  # when it becomes available
            return
        if labels_changed or ref_changed:
            for rs in self._matching_rss(new):
                self.enqueue(rs)

    def _delete_pod(self, pod: Pod) -> None:
        rs = self._owner_of(pod)
        if rs is None:
            return
        self.expectations.deletion_observed(rs.key, pod.key)
        self.enqueue(rs)

    # ------------------------------------------------------------------ sync
    def sync(self, key: str) -> None:
        rs = self.rs_informer.get(key)
        if rs is None:
            self.expectations.delete(key)
            return
        ns, _ = split_key(key)
        try:
            selector = selector_from_label_selector(rs.spec.selector)
        except ValueError as e:
            log.warning("replicaset %s: invalid selector: %s", key, e)
            return
        needs_sync = self.expectations.satisfied(key)
        candidates = [p for p in self.pod_informer.by_index(CONTROLLER_INDEX, rs.metadata.uid or "")
                      + self.pod_informer.by_index(CONTROLLER_INDEX, orphan_key(ns)) if podutil.is_pod_active(p)]
        pods, claim_errors = claim(rs, selector, candidates, self.client, lambda: self._fresh(rs))
        manage_error: Exception | None = None
        if needs_sync and rs.metadata.deletion_timestamp is None:
            try:
                self.manage_replicas(pods, rs, selector)
            except Exception as e:
                manage_error = e
        status = calculate_status(rs, pods, manage_error)
        updated = self.update_status(rs, status)
        if manage_error is not None:
            raise manage_error
        if claim_errors:
            raise claim_errors[0]
        # look again when the next ready pod reaches minReadySeconds
        waits = [w for p in pods if (w := podutil.available_in(p, updated.spec.min_ready_seconds)) is not None]
        if waits:
            self.enqueue_after(key, min(waits) + 0.1)

    def _fresh(self, rs: ReplicaSet) -> ReplicaSet | None:
        try:
            return self.client.get(ReplicaSet, rs.metadata.name or "", rs.metadata.namespace)
        except Exception as e:
            if is_not_found(e):
                return None
            raise

    def manage_replicas(self, pods: list[Pod], rs: ReplicaSet, selector: Selector) -> None:
        """Create or delete pods so that len(pods) == spec.replicas (at most `burst` per sync)."""
        key = rs.key
        diff = len(pods) - (rs.spec.replicas or 0)
        if diff < 0:
            count = min(-diff, self.burst)
            self.expectations.expect_creations(key, count)
            template = pod_from_template(rs)

            def create() -> None:
                try:
                    created = self.client.create(template.copy_deep(), rs.metadata.namespace)
                except Exception as e:
                    self.event(rs, "Warning", "FailedCreate", f"Error creating: {e}")
                    raise
                self.event(rs, "Normal", "SuccessfulCreate", f"Created pod: {created.metadata.name}")

            created, error = slow_start_batch(count, SLOW_START_INITIAL_BATCH, create, self._pool)
            for _ in range(count - created):  # never arriving: do not wait for them
                self.expectations.creation_observed(key)
            if error is not None:
                raise error
        elif diff > 0:
            count = min(diff, self.burst)
            victims = podutil.pods_to_delete(pods, count, self._related_pods(rs))
            self.expectations.expect_deletions(key, [key_of(p) for p in victims])

            def delete(pod: Pod) -> Exception | None:
                try:
                    self.client.delete(Pod, pod.metadata.name or "", pod.metadata.namespace)
                except Exception as e:
                    self.expectations.deletion_observed(key, key_of(pod))
                    if is_not_found(e):
                        return None
                    self.event(rs, "Warning", "FailedDelete", f"Error deleting: {e}")
                    return e
                self.event(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {pod.metadata.name}")
                return None

            errors = [e for e in self._pool.map(delete, victims) if e is not None]
            if errors:
                raise errors[0]

    def _related_pods(self, rs: ReplicaSet) -> list[Pod]:
        """Active pods of every ReplicaSet with the same controller as `rs` (its Deployment)."""
        owner = rs.metadata.controller_ref()
        if owner is None or not owner.uid:
            return [p for p in self.pod_informer.by_index(CONTROLLER_INDEX, rs.metadata.uid or "")]
        pods: list[Pod] = []
        for sibling in self.rs_informer.by_index(CONTROLLER_INDEX, owner.uid):
            pods.extend(self.pod_informer.by_index(CONTROLLER_INDEX, sibling.metadata.uid or ""))
        return pods

    def update_status(self, rs: ReplicaSet, status: ReplicaSetStatus) -> ReplicaSet:
        """Write `status` (with observedGeneration) unless nothing changed; one retry on Conflict."""
        status.observed_generation = rs.metadata.generation
        if status.to_dict() == rs.status.to_dict():
            return rs
        new = rs.copy_deep()
        new.status = status
        try:
            return self.client.update_status(new)
        except Exception as e:
            if not is_conflict(e):
                raise
        fresh = self.client.get(ReplicaSet, rs.metadata.name or "", rs.metadata.namespace)
        if fresh.metadata.uid != rs.metadata.uid:
            return rs
        fresh.status = status
        return self.client.update_status(fresh)
