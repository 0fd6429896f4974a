"""`mkubectl logs`: a pod's (or deployment's, replicaset's, service's) container logs;
`-f` follows, `-l` reads several pods (their lines interleaved when following)."""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import click

from mkube.api.errors import ApiError
from mkube.kubectl import fetch, polymorphic, resources
from mkube.kubectl.context import Kube
from mkube.kubectl.errors import CommandError, ExitError, error_line
from mkube.kubectl.output import err
from mkube.kubectl.timeparse import parse_duration
from mkube.kubectl.waiting import TimedOut, poll

Obj = dict[str, Any]


@dataclass
class Stream:
    pod: str
    container: str


def _write(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _pick_pod(kube: Kube, target: str, timeout: float) -> Obj:
    """The pod named by `target` (NAME, pod/NAME, deploy/NAME, rs/NAME, svc/NAME)."""
    client = kube.client
    ns = kube.namespace
    if "/" not in target:
        return fetch.get_object(client, resources.resolve_type("pods"), target, ns)
    type_, _, name = target.partition("/")
    rt = resources.resolve_type(type_)
    obj = fetch.get_object(client, rt, name, ns)
    if rt.kind == "Pod":
        return obj
    try:
        pods: list[Obj] = poll(lambda: polymorphic.pods_for(client, rt, obj, ns) or None, timeout=timeout,
                               interval=0.5)
    except TimedOut:
        raise CommandError("timed out waiting for the condition") from None
    if len(pods) > 1:
        err(f"Found {len(pods)} pods, using pod/{(pods[0].get('metadata') or {}).get('name')}")
    return pods[0]


def _container(pod: Obj, container: str | None, quiet: bool) -> str:
    if container:
        return container
    name, chose = polymorphic.default_container(pod)
    if chose and not quiet:
        err(f'Defaulted container "{name}" out of: {polymorphic.all_container_names(pod)}')
    return name


def _chunks(kube: Kube, s: Stream, opts: dict[str, Any]) -> Iterator[bytes]:
    result = kube.client.log(kube.namespace, s.pod, container=s.container, **opts)
    if isinstance(result, str):
        yield result.encode()
    else:
        yield from result


def _follow_many(kube: Kube, streams: list[Stream], opts: dict[str, Any], prefix: bool) -> list[str]:
    """Follow several streams at once; complete lines are written whole."""
    lock = threading.Lock()
    failures: list[str] = []

    def pump(s: Stream) -> None:
        head = f"[pod/{s.pod}/{s.container}] ".encode() if prefix else b""
        buf = b""
        try:
            for chunk in _chunks(kube, s, opts):
                buf += chunk
                *lines, buf = buf.split(b"\n")
                if lines:
                    with lock:
                        _write(b"".join(head + line + b"\n" for line in lines))
            if buf:
                with lock:
                    _write(head + buf)
        except ApiError as e:
            with lock:
                failures.append(error_line(e))

    threads = [threading.Thread(target=pump, args=(s,), daemon=True) for s in streams]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.2)
    return failures


@click.command("logs")
@click.argument("target", required=False)
@click.argument("container_arg", required=False)
@click.option("-c", "--container", help="The container (default: the pod's default container).")
@click.option("-f", "--follow", is_flag=True, help="Keep streaming new lines.")
@click.option("-p", "--previous", is_flag=True, help="The previous (crashed) instance of the container.")
@click.option("--tail", type=int, default=-1, help="Only the last N lines (-1: all; 10 with -l).")
@click.option("--timestamps", is_flag=True, help="Prefix every line with its RFC 3339 timestamp.")
@click.option("--since", help="Only lines newer than this (5s, 2m, 3h).")
@click.option("-l", "--selector", help="Read the logs of every pod matching this selector.")
@click.option("--prefix", is_flag=True, help="Prefix lines with [pod/NAME/CONTAINER].")
@click.option("--max-log-requests", type=int, default=5, help="With -l -f: most pods followed at once.")
@click.option("--pod-running-timeout", default="20s", help="How long to wait for a pod to exist.")
@click.pass_obj
def logs_command(kube: Kube, target: str | None, container_arg: str | None, container: str | None, follow: bool,
                 previous: bool, tail: int, timestamps: bool, since: str | None, selector: str | None,
                 prefix: bool, max_log_requests: int, pod_running_timeout: str) -> None:
    """Print the logs of a container in a pod."""
    if container and container_arg:
        raise CommandError("only one of -c or an inline [CONTAINER] arg is allowed")
    container = container or container_arg
    opts: dict[str, Any] = {"follow": follow, "previous": previous, "timestamps": timestamps}
    if since:
        opts["since_seconds"] = max(1, math.ceil(parse_duration(since)))
    streams: list[Stream] = []
    if selector:
        if target:
            raise CommandError("only a selector (-l) or a POD name is allowed")
        opts["tail_lines"] = tail if tail >= 0 else 10
        pods, _ = fetch.list_objects(kube.client, resources.resolve_type("pods"), kube.namespace, selector)
        if not pods:
            err(f"No resources found in {kube.namespace} namespace.")
            return
        if follow and len(pods) > max_log_requests:
            raise CommandError(f"you are attempting to follow {len(pods)} log streams, but maximum allowed "
                               f"concurrency is {max_log_requests}, use --max-log-requests to increase the limit")
        for pod in pods:
            streams.append(Stream(str(pod["metadata"]["name"]), _container(pod, container, quiet=True)))
    else:
        if not target:
            raise CommandError("expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.\nPOD or TYPE/NAME "
                               "is a required argument for the logs command")
        if tail >= 0:
            opts["tail_lines"] = tail
        pod = _pick_pod(kube, target, parse_duration(pod_running_timeout))
        streams.append(Stream(str(pod["metadata"]["name"]), _container(pod, container, quiet=False)))
    if follow and len(streams) > 1:
        failures = _follow_many(kube, streams, opts, prefix)
        for line in failures:
            err(line)
        if failures:
            raise ExitError(1)
        return
    for s in streams:
        head = f"[pod/{s.pod}/{s.container}] ".encode() if prefix else b""
        if not head:
            for chunk in _chunks(kube, s, opts):
                _write(chunk)
            continue
        data = b"".join(_chunks(kube, s, opts))
        _write(b"".join(head + line + b"\n" for line in data.splitlines()))
