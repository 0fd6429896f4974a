"""DockerRuntime against the real Docker Engine: pods share a network namespace, ports are
published, stop is graceful then forceful, logs/exec/limits/labels work, pulls fail fast.

Every test uses its own node name, so listings never see another test's objects; the
`rt` finalizer removes the node's sandboxes (and their containers) and `docker_cleanup`
removes anything else labelled io.mkube.* that the test created, even on failure.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest

from mkube.kubelet.runtime import (
    ContainerConfig,
    ContainerCreateError,
    ContainerStartError,
    ExecTimeout,
    ImagePullError,
    Mount,
    NotFound,
    PortMapping,
    Runtime,
    RuntimeUnavailable,
    SandboxConfig,
    SandboxCreateError,
)
from mkube.kubelet.runtime.base import LABEL_NODE_NAME, LABEL_POD_UID, LABEL_SANDBOX_ID, LABEL_TYPE
from mkube.kubelet.runtime.docker import DockerRuntime
from tests.fixtures.docker import DockerCleanup, push_image

pytestmark = pytest.mark.docker


@pytest.fixture
def rt(docker_cleanup: DockerCleanup) -> Iterator[DockerRuntime]:
    # docker_cleanup.labels mark our objects as this test's: concurrent sessions leave them alone.
    runtime = DockerRuntime(node_name=docker_cleanup.node(f"e2e-{uuid.uuid4().hex[:10]}"), host_ip="127.0.0.1",
                            extra_labels=docker_cleanup.labels)
    try:
        yield runtime
    finally:
        for sb in runtime.list_sandboxes():
            runtime.remove_sandbox(sb.id)
        runtime.close()


def new_pod(name: str = "web", ports: list[PortMapping] | None = None) -> SandboxConfig:
    return SandboxConfig(pod_uid=str(uuid.uuid4()), namespace="e2e", name=name, hostname=name, ports=ports or [])


def start(rt: DockerRuntime, sandbox_id: str, cfg: ContainerConfig) -> str:
    cid = rt.create_container(sandbox_id, cfg)
    rt.start_container(cid)
    return cid


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def all_logs(rt: DockerRuntime, cid: str) -> bytes:
    return b"".join(rt.logs(cid))


HTTPD = ["sh", "-c", "mkdir -p /www && echo hello-from-$(hostname) > /www/index.html && exec httpd -f -p 8080 -h /www"]


def test_pod_containers_share_localhost_and_publish_ports(rt: DockerRuntime, busybox_image: str) -> None:
    assert isinstance(rt, Runtime)
    sb = rt.run_sandbox(new_pod("web", ports=[PortMapping(8080)]))
    assert sb.state == "ready" and sb.ip.count(".") == 3
    host_port = sb.ports[8080]
    assert host_port > 0 and sb.port_mappings[0].host_ip == "127.0.0.1"

    start(rt, sb.id, ContainerConfig(name="server", image=busybox_image, command=HTTPD))
    client = start(rt, sb.id, ContainerConfig(
        name="client", image=busybox_image,
        command=["sh", "-c", "until wget -qO- localhost:8080/; do sleep 0.1; done; exec sleep 3600"]))
    # The second container reaches the first over the pod's shared localhost.
    assert wait_for(lambda: b"hello-from-web" in all_logs(rt, client))
    # The ephemeral published port answers from the host on 127.0.0.1.
    resp = wait_for(lambda: _get(f"http://127.0.0.1:{host_port}/"))
    assert resp.text == "hello-from-web\n"
    assert [s.id for s in rt.list_sandboxes()] == [sb.id]
    assert rt.list_sandboxes()[0].ports == {8080: host_port}


def _get(url: str) -> httpx.Response | None:
    try:
        resp = httpx.get(url, timeout=1.0)
        return resp if resp.status_code == 200 else None
    except httpx.HTTPError:
        return None


def test_list_by_labels_finds_exactly_the_pods_containers(rt: DockerRuntime, busybox_image: str) -> None:
    a_cfg, b_cfg = new_pod("a"), new_pod("b")
    a, b = rt.run_sandbox(a_cfg), rt.run_sandbox(b_cfg)
    sleep = ["sleep", "3600"]
    a1 = start(rt, a.id, ContainerConfig(name="one", image=busybox_image, command=sleep, spec_hash="h1", attempt=3))
    a2 = start(rt, a.id, ContainerConfig(name="two", image=busybox_image, command=["true"]))
    b1 = start(rt, b.id, ContainerConfig(name="one", image=busybox_image, command=sleep))

    mine = rt.list_containers({LABEL_POD_UID: a_cfg.pod_uid})
    assert {c.id for c in mine} == {a1, a2}
    wait_for(lambda: rt.inspect_container(a2).state == "exited")
    assert [c.id for c in rt.list_containers({LABEL_POD_UID: a_cfg.pod_uid}, all=False)] == [a1]
    assert {c.id for c in rt.list_containers()} == {a1, a2, b1}
    info = next(c for c in rt.list_containers({LABEL_POD_UID: a_cfg.pod_uid}) if c.id == a1)
    assert (info.name, info.spec_hash, info.attempt, info.sandbox_id) == ("one", "h1", 3, a.id)
    assert info.state == "running" and info.started_at and info.started_at <= time.time()
    assert info.image == busybox_image and info.image_id.startswith("sha256:")
    assert info.labels[LABEL_TYPE] == "container" and info.labels[LABEL_NODE_NAME] == rt.node_name
    done = next(c for c in rt.list_containers() if c.id == a2)
    assert (done.state, done.exit_code) == ("exited", 0) and done.finished_at
    assert [s.pod_uid for s in rt.list_sandboxes({LABEL_POD_UID: b_cfg.pod_uid})] == [b_cfg.pod_uid]
    # one listing for both kinds gives what the two listings give
    sandboxes, containers = rt.list_all({LABEL_POD_UID: a_cfg.pod_uid})
    assert [s.id for s in sandboxes] == [a.id] and {c.id for c in containers} == {a1, a2}
    sandboxes, containers = rt.list_all()
    assert {s.id for s in sandboxes} == {a.id, b.id} and {c.id for c in containers} == {a1, a2, b1}
    assert next(c for c in containers if c.id == a2).exit_code == 0

    # A restarted kubelet (new runtime object, empty caches) adopts what exists.
    again = DockerRuntime(node_name=rt.node_name, extra_labels=rt.extra_labels)
    try:
        assert {s.id for s in again.list_sandboxes()} == {a.id, b.id}
        a3 = again.create_container(a.id, ContainerConfig(name="three", image=busybox_image, command=sleep))
        assert again.inspect_container(a3).labels[LABEL_POD_UID] == a_cfg.pod_uid
    finally:
        again.close()

    rt.remove_sandbox(a.id)
    assert {c.id for c in rt.list_containers()} == {b1}
    assert [s.id for s in rt.list_sandboxes()] == [b.id]
    rt.remove_sandbox(a.id)  # idempotent


def test_stop_is_sigterm_then_sigkill_after_the_timeout(rt: DockerRuntime, busybox_image: str) -> None:
    sb = rt.run_sandbox(new_pod())
    polite = start(rt, sb.id, ContainerConfig(
        name="polite", image=busybox_image,
        command=["sh", "-c", "trap 'echo got-term; exit 0' TERM; echo ready; while :; do sleep 0.1; done"]))
    # sh as PID 1 has no default SIGTERM action: without a trap the signal is ignored.
    stubborn = start(rt, sb.id, ContainerConfig(
        name="stubborn", image=busybox_image, command=["sh", "-c", "echo ready; while :; do sleep 0.1; done"]))
    wait_for(lambda: b"ready" in all_logs(rt, polite) and b"ready" in all_logs(rt, stubborn))

    t0 = time.monotonic()
    rt.stop_container(polite, timeout_s=10)
    assert time.monotonic() - t0 < 8  # well before the timeout (generous for a loaded host)
    info = rt.inspect_container(polite)
    assert (info.state, info.exit_code) == ("exited", 0)
    assert b"got-term" in all_logs(rt, polite)

    t0 = time.monotonic()
    rt.stop_container(stubborn, timeout_s=2)
    took = time.monotonic() - t0
    assert 1.8 <= took < 15
    info = rt.inspect_container(stubborn)
    assert (info.state, info.exit_code, info.oom_killed) == ("exited", 137, False)
    assert info.finished_at and info.started_at and info.finished_at > info.started_at

    rt.stop_container(stubborn, timeout_s=2)  # idempotent
    rt.remove_container(stubborn)
    rt.remove_container(stubborn)
    rt.stop_container(stubborn)
    with pytest.raises(NotFound):
        rt.inspect_container(stubborn)

    rt.stop_sandbox(sb.id, timeout_s=5)
    assert rt.inspect_sandbox(sb.id).state == "notready"
    # The pause container exits 0 on SIGTERM (137 would mean it had to be killed).
    assert rt.inspect_container(sb.id).exit_code == 0


def test_logs(rt: DockerRuntime, busybox_image: str) -> None:
    sb = rt.run_sandbox(new_pod())
    cid = start(rt, sb.id, ContainerConfig(
        name="talker", image=busybox_image,
        command=["sh", "-c", "echo one; echo two >&2; sleep 0.3; echo three; sleep 1.5; echo four"]))
    wait_for(lambda: b"three" in all_logs(rt, cid))
    # stdout and stderr are separate pipes: only their order within a stream is certain.
    assert all_logs(rt, cid) in (b"one\ntwo\nthree\n", b"two\none\nthree\n")
    assert b"".join(rt.logs(cid, tail=1)) == b"three\n"
    stamped = b"".join(rt.logs(cid, timestamps=True)).splitlines()
    assert b" one" in stamped[0] + stamped[1] and stamped[0][:2] == b"20"
    # follow returns what there is, then streams until the container exits.
    followed = b"".join(rt.logs(cid, follow=True))
    assert followed.endswith(b"three\nfour\n") and len(followed) == len(b"one\ntwo\nthree\nfour\n")
    assert b"".join(rt.logs(cid, since=time.time() + 60)) == b""
    with pytest.raises(NotFound):
        rt.logs("0" * 64)


def test_exec(rt: DockerRuntime, busybox_image: str) -> None:
    sb = rt.run_sandbox(new_pod())
    cid = start(rt, sb.id, ContainerConfig(name="app", image=busybox_image, command=["sleep", "3600"],
                                           env={"GREETING": "hi there"}))
    code, out = rt.exec(cid, ["sh", "-c", "echo $GREETING; echo oops >&2; exit 3"], timeout_s=10)
    # stdout and stderr are separate pipes: their relative order is not guaranteed.
    assert code == 3 and out in (b"hi there\noops\n", b"oops\nhi there\n")
    assert rt.exec(cid, ["cat", "/etc/hostname"]).output == b"web\n"
    missing = rt.exec(cid, ["/no/such/binary"], timeout_s=10)
    assert missing.exit_code in (126, 127) and b"no such file" in missing.output.lower()
    t0 = time.monotonic()
    with pytest.raises(ExecTimeout):
        rt.exec(cid, ["sleep", "30"], timeout_s=1)
    assert time.monotonic() - t0 < 6
    big = rt.exec(cid, ["sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x"], timeout_s=10)
    assert big == (0, b"x" * 300000)
    with pytest.raises(NotFound):
        rt.exec("0" * 64, ["true"])


def test_config_env_workdir_command_args_and_mounts(rt: DockerRuntime, busybox_image: str,
                                                    tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("from-host\n")
    sb = rt.run_sandbox(new_pod())
    cid = start(rt, sb.id, ContainerConfig(
        name="cfg", image=busybox_image, command=["sh", "-c"],
        args=['echo "$A/$B"; pwd; cat /data/data.txt; touch /data/x 2>/dev/null || echo read-only; '
              'echo w > /scratch/y && echo wrote'],
        env={"A": "alpha", "B": "beta gamma"}, working_dir="/tmp",
        mounts=[Mount(str(tmp_path), "/data", read_only=True), Mount(str(tmp_path / "rw"), "/scratch")]))
    wait_for(lambda: rt.inspect_container(cid).state == "exited")
    assert all_logs(rt, cid) == b"alpha/beta gamma\n/tmp\nfrom-host\nread-only\nwrote\n"
    assert (tmp_path / "rw" / "y").read_text() == "w\n"
    # args alone keep the image ENTRYPOINT/CMD semantics: busybox image has CMD ["sh"].
    only_args = start(rt, sb.id, ContainerConfig(name="args", image=busybox_image, args=["echo", "just-args"]))
    wait_for(lambda: rt.inspect_container(only_args).state == "exited")
    assert all_logs(rt, only_args) == b"just-args\n"


def test_resource_limits_are_applied(rt: DockerRuntime, busybox_image: str,
                                     docker_client: docker.DockerClient) -> None:
    sb = rt.run_sandbox(new_pod())
    cid = start(rt, sb.id, ContainerConfig(name="limited", image=busybox_image, command=["sleep", "3600"],
                                           memory_limit=64 * 1024 * 1024, nano_cpus=500_000_000, cpu_shares=512))
    hc = docker_client.api.inspect_container(cid)["HostConfig"]
    assert (hc["Memory"], hc["MemorySwap"], hc["NanoCpus"], hc["CpuShares"]) == (
        64 * 1024 * 1024, 64 * 1024 * 1024, 500_000_000, 512)
    assert hc["RestartPolicy"]["Name"] in ("", "no")
    # What the kernel enforces (cgroup v1 or v2 layout).
    mem = rt.exec(cid, ["sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null"
                                    " || cat /sys/fs/cgroup/memory.max"]).output.strip()
    assert mem == b"67108864"
    cpu = rt.exec(cid, ["sh", "-c", "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null"
                                    " || cut -d' ' -f1 /sys/fs/cgroup/cpu.max"]).output.strip()
    assert cpu == b"50000"

    hog = start(rt, sb.id, ContainerConfig(name="hog", image=busybox_image, memory_limit=16 * 1024 * 1024,
                                           command=["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"]))
    info = wait_for(lambda: (i := rt.inspect_container(hog)).state == "exited" and i)
    assert (info.exit_code, info.oom_killed) == (137, True)


def test_image_handling(rt: DockerRuntime, busybox_image: str) -> None:
    assert rt.image_present(busybox_image)
    assert rt.image_id(busybox_image).startswith("sha256:")
    assert not rt.image_present("mkube-e2e/absent:never")
    with pytest.raises(NotFound):
        rt.image_id("mkube-e2e/absent:never")
    t0 = time.monotonic()
    with pytest.raises(ImagePullError) as err:
        rt.pull_image("127.0.0.1:1/mkube-e2e/absent:1")  # nothing listens on port 1
    assert time.monotonic() - t0 < 10
    assert err.value.reason == "RegistryUnavailable" and "127.0.0.1:1" in err.value.message
    with pytest.raises(ImagePullError) as bad:
        rt.pull_image("UPPER/Case::bad")
    assert bad.value.reason == "InvalidImageName"
    sb = rt.run_sandbox(new_pod())
    with pytest.raises(ContainerCreateError) as create_err:
        rt.create_container(sb.id, ContainerConfig(name="x", image="mkube-e2e/absent:never"))
    assert create_err.value.reason == "ImageNotPresent"


def test_pull_from_a_local_registry(rt: DockerRuntime, registry: str, busybox_image: str,
                                    docker_client: docker.DockerClient) -> None:
    ref = f"{registry}/mkube-e2e-runtime:{uuid.uuid4().hex[:8]}"
    docker_client.api.tag(busybox_image, ref.rsplit(":", 1)[0], ref.rsplit(":", 1)[1])
    try:
        push_image(docker_client, ref)
        docker_client.api.remove_image(ref)
        assert not rt.image_present(ref)
        image_id = rt.pull_image(ref)
        assert image_id == rt.image_id(busybox_image) and rt.image_present(ref)
        with pytest.raises(ImagePullError) as err:
            rt.pull_image(f"{registry}/mkube-e2e-runtime:no-such-tag")
        assert err.value.reason == "ErrImagePull"
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.api.remove_image(ref)


def test_start_failure_and_host_port_conflict(rt: DockerRuntime, busybox_image: str) -> None:
    sb = rt.run_sandbox(new_pod("first", ports=[PortMapping(80)]))
    cid = rt.create_container(sb.id, ContainerConfig(name="bad", image=busybox_image, command=["/no/such/exe"]))
    with pytest.raises(ContainerStartError, match="no such file"):
        rt.start_container(cid)
    info = rt.inspect_container(cid)
    assert info.state == "exited" and info.exit_code and "no such file" in info.error
    assert [c.state for c in rt.list_containers({LABEL_SANDBOX_ID: sb.id})] == ["exited"]

    taken = sb.ports[80]
    with pytest.raises(SandboxCreateError):
        rt.run_sandbox(new_pod("second", ports=[PortMapping(80, host_port=taken, host_ip="127.0.0.1")]))
    assert [s.id for s in rt.list_sandboxes()] == [sb.id]  # the failed sandbox left nothing behind

    # the same through the two halves, with a container created in the sandbox before it started
    third = rt.create_sandbox(new_pod("third", ports=[PortMapping(80, host_port=taken, host_ip="127.0.0.1")]))
    early = rt.create_container(third, ContainerConfig(name="early", image=busybox_image, command=["sleep", "60"]))
    with pytest.raises(SandboxCreateError, match="e2e/third"):
        rt.start_sandbox(third)
    assert [s.id for s in rt.list_sandboxes()] == [sb.id]
    assert early not in {c.id for c in rt.list_containers()}


def test_containers_created_before_their_sandbox_starts_join_it(rt: DockerRuntime, busybox_image: str) -> None:
    sandbox_id = rt.create_sandbox(new_pod("early", ports=[PortMapping(8080)]))
    cid = rt.create_container(sandbox_id, ContainerConfig(name="web", image=busybox_image, command=HTTPD))
    sb = rt.start_sandbox(sandbox_id)
    assert sb.state == "ready" and sb.ip and sb.ports[8080]
    rt.start_container(cid)
    # the container serves on the sandbox's network: its published port answers
    response = wait_for(lambda: _get(f"http://127.0.0.1:{sb.ports[8080]}/"))
    assert response.text.strip() == "hello-from-early"


def test_builds_the_pause_image_when_absent(docker_client: docker.DockerClient,
                                           docker_cleanup: DockerCleanup) -> None:
    tag = f"mkube-e2e/pause-{uuid.uuid4().hex[:8]}:latest"
    rt = DockerRuntime(node_name=f"e2e-{uuid.uuid4().hex[:10]}", pause_image=tag, extra_labels=docker_cleanup.labels)
    try:
        assert not rt.image_present(tag)
        sb = rt.run_sandbox(new_pod())
        assert sb.state == "ready" and rt.image_present(tag)
        rt.stop_sandbox(sb.id, timeout_s=10)
        assert rt.inspect_container(sb.id).exit_code == 0  # the built pause exits 0 on SIGTERM
        rt.remove_sandbox(sb.id)
    finally:
        for s in rt.list_sandboxes():
            rt.remove_sandbox(s.id)
        rt.close()
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.api.remove_image(tag, force=True)


def test_node_resources_and_ping(rt: DockerRuntime) -> None:
    assert rt.ping()
    res = rt.info()
    assert res.cpu_millis >= 1000 and res.memory_bytes > 0
    assert res.os == "linux" and res.arch in ("amd64", "arm64") and res.runtime_version.startswith("docker://")


def test_docker_not_answering(tmp_path: Path) -> None:
    dead = DockerRuntime(str(tmp_path / "no-docker.sock"))
    try:
        assert dead.ping() is False
        with pytest.raises(RuntimeUnavailable):
            dead.list_containers()
        with pytest.raises(RuntimeUnavailable):
            dead.run_sandbox(new_pod())
    finally:
        dead.close()


def test_pod_sync_runs_restarts_and_deletes_a_pod_on_docker(rt: DockerRuntime, busybox_image: str) -> None:
    """The planner and executor (kubelet/podsync) on the real runtime."""
    from mkube.kubelet.podsync import Backoff, StartContainer, execute, plan

    uid = str(uuid.uuid4())
    pod: dict = {
        "metadata": {"name": "sync", "namespace": "e2e", "uid": uid},
        "spec": {"restartPolicy": "Always", "terminationGracePeriodSeconds": 2, "containers": [
            # busybox_image is :latest, so imagePullPolicy defaults to Always: the pull fails
            # (no registry has it) and the node's copy is used.
            {"name": "web", "image": busybox_image, "command": HTTPD, "ports": [{"containerPort": 8080}]},
            {"name": "crasher", "image": busybox_image, "command": ["sh", "-c", "echo run; exit 3"],
             "imagePullPolicy": "IfNotPresent"},
        ]},
    }
    backoff = Backoff()

    def sync(p: dict | None) -> list:
        sbs = rt.list_sandboxes({LABEL_POD_UID: uid})
        cs = rt.list_containers({LABEL_POD_UID: uid})
        actions = plan(p, sbs, cs, time.time(), backoff)
        ready = [s for s in sbs if s.state == "ready"]
        result = execute(actions, p, rt, now=time.time(), sandbox=ready[0] if ready else None, backoff=backoff)
        assert result.sandbox_error is None and not {k: v for k, v in result.waiting.items()
                                                     if v[0] != "CrashLoopBackOff"}
        return actions

    sync(pod)
    sb = rt.list_sandboxes({LABEL_POD_UID: uid})[0]
    assert wait_for(lambda: _get(f"http://127.0.0.1:{sb.ports[8080]}/")).text == "hello-from-sync\n"
    # crasher exits; the first restart is immediate, the next one waits 10 s.
    wait_for(lambda: any(c.name == "crasher" and c.state == "exited" for c in rt.list_containers({LABEL_POD_UID: uid})))
    assert [a.attempt for a in sync(pod) if isinstance(a, StartContainer)] == [1]
    wait_for(lambda: all(c.state == "exited" for c in rt.list_containers({LABEL_POD_UID: uid}) if c.name == "crasher"))
    assert not any(isinstance(a, StartContainer) for a in sync(pod))
    # delete: graceful stop, then removal of everything
    pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    sync(pod)
    sync(pod)
    assert rt.list_sandboxes({LABEL_POD_UID: uid}) == [] and rt.list_containers({LABEL_POD_UID: uid}) == []
