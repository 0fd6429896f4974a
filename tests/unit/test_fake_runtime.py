"""FakeRuntime behaves like the Runtime protocol says (and like Docker, as the kubelet sees it)."""

from __future__ import annotations

import ipaddress
import threading
import time

import pytest

from mkube.kubelet.runtime import (
    ContainerConfig,
    ContainerCreateError,
    ContainerRuntimeError,
    ContainerStartError,
    ExecResult,
    ExecTimeout,
    ImagePullError,
    NotFound,
    PortMapping,
    Runtime,
    RuntimeUnavailable,
    SandboxConfig,
    SandboxCreateError,
)
from mkube.kubelet.runtime.base import (
    LABEL_CONTAINER_HASH,
    LABEL_NODE_NAME,
    LABEL_POD_UID,
    LABEL_SANDBOX_ID,
    LABEL_TYPE,
)
from mkube.kubelet.runtime.fake import FakeClock, FakeRuntime

IMG = "mkube/busybox:latest"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def rt(clock: FakeClock) -> FakeRuntime:
    return FakeRuntime("node-a", clock=clock, images=[IMG])


def pod(uid: str = "uid-1", name: str = "web", ports: list[PortMapping] | None = None) -> SandboxConfig:
    return SandboxConfig(pod_uid=uid, namespace="default", name=name, ports=ports or [])


def run(rt: FakeRuntime, sandbox_id: str, name: str = "app", **kw: object) -> str:
    cid = rt.create_container(sandbox_id, ContainerConfig(name=name, image=kw.pop("image", IMG), **kw))  # type: ignore[arg-type]
    rt.start_container(cid)
    return cid


def test_implements_the_protocol(rt: FakeRuntime) -> None:
    assert isinstance(rt, Runtime)
    assert rt.ping()
    res = rt.info()
    assert res.cpu_millis == 4000 and res.os == "linux" and res.runtime_version.startswith("fake://")


def test_sandboxes_get_distinct_ips_in_the_cidr_and_ephemeral_ports(rt: FakeRuntime) -> None:
    a = rt.run_sandbox(pod("a", ports=[PortMapping(8080)]))
    b = rt.run_sandbox(pod("b", ports=[PortMapping(8080), PortMapping(53, "UDP", 5353)]))
    net = ipaddress.ip_network("10.88.0.0/16")
    assert a.ip != b.ip and ipaddress.ip_address(a.ip) in net and ipaddress.ip_address(b.ip) in net
    assert a.state == "ready" and a.ports[8080] != b.ports[8080]
    assert 32768 <= a.ports[8080] < 61000
    assert b.ports[53] == 5353
    assert {(m.container_port, m.protocol) for m in b.port_mappings} == {(8080, "TCP"), (53, "UDP")}
    assert a.labels[LABEL_TYPE] == "sandbox" and a.labels[LABEL_NODE_NAME] == "node-a"
    assert a.pod_uid == "a" and a.namespace == "default" and a.name == "web"


def test_host_port_conflict_raises_and_leaves_nothing(rt: FakeRuntime) -> None:
    first = rt.run_sandbox(pod("a", ports=[PortMapping(80, host_port=8080)]))
    with pytest.raises(SandboxCreateError, match="already allocated"):
        rt.run_sandbox(pod("b", ports=[PortMapping(80, host_port=8080)]))
    assert len(rt.list_sandboxes()) == 1
    rt.stop_sandbox(first.id)
    rt.remove_sandbox(first.id)
    again = rt.run_sandbox(pod("b", ports=[PortMapping(80, host_port=8080)]))
    assert again.ports == {80: 8080}
    assert again.ip == first.ip  # released addresses are reused


def test_images_pull_instantly_unless_missing(clock: FakeClock) -> None:
    rt = FakeRuntime(clock=clock, missing_images=["registry.local/nope:1"])
    sb = rt.run_sandbox(pod())
    with pytest.raises(ContainerCreateError) as err:
        rt.create_container(sb.id, ContainerConfig(name="app", image="busybox"))
    assert err.value.reason == "ImageNotPresent"
    assert not rt.image_present("busybox")
    image_id = rt.pull_image("busybox")
    assert image_id.startswith("sha256:")
    assert rt.image_present("busybox:latest") and rt.image_id("busybox:latest") == image_id
    with pytest.raises(ImagePullError) as pull_err:
        rt.pull_image("registry.local/nope:1")
    assert pull_err.value.reason == "ErrImagePull"
    with pytest.raises(NotFound):
        rt.image_id("registry.local/nope:1")
    rt.create_container(sb.id, ContainerConfig(name="app", image="busybox"))


def test_container_starts_after_the_configured_delay(clock: FakeClock) -> None:
    rt = FakeRuntime(clock=clock, images=[IMG], start_delay=2.0)
    sb = rt.run_sandbox(pod())
    cid = rt.create_container(sb.id, ContainerConfig(name="app", image=IMG))
    assert rt.inspect_container(cid).state == "created"
    t0 = clock()
    rt.start_container(cid)
    clock.advance(1.0)
    assert rt.inspect_container(cid).state == "created"
    clock.advance(1.5)
    info = rt.inspect_container(cid)
    assert info.state == "running" and info.started_at == t0 + 2.0 and info.exit_code is None


def test_scripted_exit_per_instance(rt: FakeRuntime, clock: FakeClock) -> None:
    rt.script("app", exit_code=[1, 0, None], after_seconds=3)
    sb = rt.run_sandbox(pod())
    first = run(rt, sb.id)
    clock.advance(2.9)
    assert rt.inspect_container(first).state == "running"
    clock.advance(0.2)
    info = rt.inspect_container(first)
    assert (info.state, info.exit_code) == ("exited", 1)
    assert info.finished_at is not None and info.started_at is not None
    assert info.finished_at - info.started_at == pytest.approx(3.0)
    second = run(rt, sb.id, attempt=1)
    clock.advance(5)
    assert rt.inspect_container(second).exit_code == 0
    third = run(rt, sb.id, attempt=2)
    clock.advance(1000)
    assert rt.inspect_container(third).state == "running"


def test_scripts_match_pod_container_then_name_then_image(rt: FakeRuntime, clock: FakeClock) -> None:
    rt.script(IMG, exit_code=3)
    rt.script("side", exit_code=4)
    rt.script("default/special/side", exit_code=5)
    sb = rt.run_sandbox(pod())
    special = rt.run_sandbox(pod("u2", name="special"))
    by_image, by_name, by_pod = run(rt, sb.id, "main"), run(rt, sb.id, "side"), run(rt, special.id, "side")
    clock.advance(1)
    assert [rt.inspect_container(c).exit_code for c in (by_image, by_name, by_pod)] == [3, 4, 5]


def test_oom_killed(rt: FakeRuntime, clock: FakeClock) -> None:
    rt.script("hog", oom_killed=True, after_seconds=1)
    sb = rt.run_sandbox(pod())
    cid = run(rt, sb.id, "hog")
    clock.advance(2)
    info = rt.inspect_container(cid)
    assert (info.state, info.exit_code, info.oom_killed) == ("exited", 137, True)


def test_start_error_is_raised_and_visible(rt: FakeRuntime) -> None:
    rt.script("bad", start_error='exec: "nope": executable file not found in $PATH')
    sb = rt.run_sandbox(pod())
    cid = rt.create_container(sb.id, ContainerConfig(name="bad", image=IMG))
    with pytest.raises(ContainerStartError, match="executable file not found"):
        rt.start_container(cid)
    info = rt.inspect_container(cid)
    assert info.state == "exited" and info.exit_code == 128 and "not found" in info.error


def test_stop_sigterm_and_sigkill_and_idempotence(rt: FakeRuntime, clock: FakeClock) -> None:
    rt.script("stubborn", ignore_sigterm=True)
    sb = rt.run_sandbox(pod())
    polite, stubborn = run(rt, sb.id, "polite"), run(rt, sb.id, "stubborn")
    clock.advance(1)
    rt.stop_container(polite, timeout_s=5)
    rt.stop_container(stubborn, timeout_s=5)
    assert rt.inspect_container(polite).exit_code == 143
    assert rt.inspect_container(stubborn).exit_code == 137
    assert rt.inspect_container(polite).finished_at == clock()
    rt.stop_container(polite)  # again: no change, no error
    assert rt.inspect_container(polite).exit_code == 143
    rt.stop_container("no-such-id")
    rt.remove_container(polite)
    rt.remove_container(polite)
    with pytest.raises(NotFound):
        rt.inspect_container(polite)
    with pytest.raises(NotFound):
        rt.start_container(polite)


def test_labels_and_list_by_labels(rt: FakeRuntime, clock: FakeClock) -> None:
    rt.script("job", exit_code=0, after_seconds=1)
    a = rt.run_sandbox(pod("uid-a"))
    b = rt.run_sandbox(pod("uid-b", name="other"))
    a1 = rt.create_container(a.id, ContainerConfig(name="app", image=IMG, spec_hash="h1", attempt=2,
                                                   labels={"team": "x", LABEL_POD_UID: "spoofed"}))
    rt.start_container(a1)
    a2 = run(rt, a.id, "job")
    run(rt, b.id, "app")
    clock.advance(2)
    mine = rt.list_containers({LABEL_POD_UID: "uid-a"})
    assert {c.id for c in mine} == {a1, a2}
    running = rt.list_containers({LABEL_POD_UID: "uid-a"}, all=False)
    assert [c.id for c in running] == [a1]
    info = rt.inspect_container(a1)
    assert info.name == "app" and info.pod_uid == "uid-a" and info.sandbox_id == a.id
    assert info.spec_hash == "h1" and info.attempt == 2 and info.labels["team"] == "x"
    assert info.labels[LABEL_SANDBOX_ID] == a.id and info.labels[LABEL_CONTAINER_HASH] == "h1"
    assert info.image == IMG and info.image_id.startswith("sha256:")
    assert [s.id for s in rt.list_sandboxes({LABEL_POD_UID: "uid-b"})] == [b.id]
    sandboxes, containers = rt.list_all({LABEL_POD_UID: "uid-a"})
    assert [s.id for s in sandboxes] == [a.id] and {c.id for c in containers} == {a1, a2}


def test_stop_and_remove_sandbox_cover_its_containers(rt: FakeRuntime) -> None:
    a = rt.run_sandbox(pod("uid-a", ports=[PortMapping(80)]))
    b = rt.run_sandbox(pod("uid-b"))
    c1, c2, other = run(rt, a.id, "one"), run(rt, a.id, "two"), run(rt, b.id, "one")
    rt.stop_sandbox(a.id)
    assert [rt.inspect_container(c).state for c in (c1, c2, other)] == ["exited", "exited", "running"]
    stopped = rt.inspect_sandbox(a.id)
    assert stopped.state == "notready" and stopped.ip == ""
    with pytest.raises(ContainerStartError):
        run(rt, a.id, "late")  # cannot join a stopped sandbox
    rt.remove_sandbox(a.id)
    rt.remove_sandbox(a.id)
    assert {c.id for c in rt.list_containers()} == {other}
    with pytest.raises(NotFound):
        rt.create_container(a.id, ContainerConfig(name="x", image=IMG))
    assert rt.counts() == (1, 1)


def test_exec_results(rt: FakeRuntime, clock: FakeClock) -> None:
    rt.script("default-exec")
    rt.script("seq", exec_results=[1, 1, ExecResult(0, b"ok\n")])
    rt.script("map", exec_results={("cat", "/tmp/healthy"): (0, b"yes")})
    rt.script("fn", exec_results=lambda cmd: (len(cmd), " ".join(cmd).encode()))
    rt.script("slow", exec_delay=5)
    sb = rt.run_sandbox(pod())
    ids = {n: run(rt, sb.id, n) for n in ("default-exec", "seq", "map", "fn", "slow")}
    assert rt.exec(ids["default-exec"], ["true"]) == (0, b"")
    assert [rt.exec(ids["seq"], ["probe"]).exit_code for _ in range(4)] == [1, 1, 0, 0]
    assert rt.exec(ids["map"], ["cat", "/tmp/healthy"]) == (0, b"yes")
    assert rt.exec(ids["map"], ["other"]).exit_code == 126
    assert rt.exec(ids["fn"], ["echo", "a"]) == (2, b"echo a")
    with pytest.raises(ExecTimeout):
        rt.exec(ids["slow"], ["x"], timeout_s=1)
    assert rt.exec(ids["slow"], ["x"], timeout_s=10).exit_code == 0
    rt.stop_container(ids["seq"])
    with pytest.raises(ContainerRuntimeError) as err:
        rt.exec(ids["seq"], ["probe"])
    assert err.value.reason == "ContainerNotRunning"


def test_logs_tail_since_timestamps_follow(rt: FakeRuntime, clock: FakeClock) -> None:
    rt.script("talker", logs=b"one\ntwo\n", exit_code=0, after_seconds=10)
    sb = rt.run_sandbox(pod())
    cid = run(rt, sb.id, "talker")
    t_start = clock()
    clock.advance(5)
    rt.write_log(cid, b"three\n")
    assert b"".join(rt.logs(cid)) == b"one\ntwo\nthree\n"
    assert list(rt.logs(cid, tail=2)) == [b"two\n", b"three\n"]
    assert list(rt.logs(cid, since=t_start + 1)) == [b"three\n"]
    stamped = list(rt.logs(cid, timestamps=True))
    assert stamped[0].endswith(b" one\n") and stamped[0][:4].isdigit() and b"Z " in stamped[0]

    got: list[bytes] = []
    follower = threading.Thread(target=lambda: got.extend(rt.logs(cid, follow=True)))
    follower.start()
    time.sleep(0.1)
    rt.write_log(cid, b"four\n")
    time.sleep(0.15)
    clock.advance(10)  # the container exits: the follow ends
    follower.join(timeout=5)
    assert not follower.is_alive()
    assert got == [b"one\n", b"two\n", b"three\n", b"four\n"]
    with pytest.raises(NotFound):
        rt.logs("nope")


def test_unavailable_and_injected_errors(rt: FakeRuntime) -> None:
    rt.inject_error("run_sandbox", SandboxCreateError("boom"), times=1)
    with pytest.raises(SandboxCreateError):
        rt.run_sandbox(pod())
    rt.run_sandbox(pod())
    rt.available = False
    assert not rt.ping()
    with pytest.raises(RuntimeUnavailable):
        rt.list_containers()
    rt.available = True
    assert rt.calls["run_sandbox"] == 2 and rt.calls["list_containers"] == 1


def test_thread_safe_concurrent_pods(rt: FakeRuntime) -> None:
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(25):
                sb = rt.run_sandbox(pod(f"u{n}-{i}", ports=[PortMapping(80)]))
                run(rt, sb.id)
        except BaseException as e:  # collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    sandboxes = rt.list_sandboxes()
    assert len(sandboxes) == 200 and len(rt.list_containers()) == 200
    assert len({s.ip for s in sandboxes}) == 200
    assert len({s.ports[80] for s in sandboxes}) == 200


def test_two_hundred_hollow_nodes_with_thirty_pods_each_are_cheap() -> None:
    t0 = time.perf_counter()
    nodes = [FakeRuntime(f"hollow-{n}", images=[IMG], pod_cidr=f"10.{n // 250}.{n % 250}.0/24")
             for n in range(200)]
    for node in nodes:
        for i in range(30):
            sb = node.run_sandbox(pod(f"{node.node_name}-{i}", ports=[PortMapping(8080)]))
            run(node, sb.id, "app")
            run(node, sb.id, "sidecar")
    for node in nodes:
        assert len(node.list_containers(all=False)) == 60
    elapsed = time.perf_counter() - t0
    assert elapsed < 10, f"200 x 30 fake pods took {elapsed:.1f} s"


def test_a_stopped_sandbox_frees_its_host_ports(rt: FakeRuntime) -> None:
    first = rt.run_sandbox(pod("a", ports=[PortMapping(80, host_port=8080)]))
    rt.stop_sandbox(first.id)
    second = rt.run_sandbox(pod("b", ports=[PortMapping(80, host_port=8080)]))
    rt.remove_sandbox(first.id)  # must not release the port now held by `second`
    with pytest.raises(SandboxCreateError):
        rt.run_sandbox(pod("c", ports=[PortMapping(80, host_port=8080)]))
    assert second.ports == {80: 8080}
