"""Smoke tests of mkube's images and the local registry, against the real Docker Engine."""

from __future__ import annotations

import contextlib
import subprocess
import time
import uuid

import docker
import docker.errors
import httpx
import pytest
from docker.models.containers import Container

from tests.fixtures.docker import (
    BUILD_SCRIPT,
    REPO_ROOT,
    DockerCleanup,
    MkubeImages,
    pull_image,
    push_image,
    wait_http,
)

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker_cleanup")]


def _registry_url(registry: str, path: str) -> str:
    port = registry.rpartition(":")[2]
    return f"http://127.0.0.1:{port}{path}"


def _wait_for_process(container: Container, name: str, timeout: float = 10.0) -> None:
    """Wait until a process whose command mentions name runs in the container."""
    deadline = time.monotonic() + timeout
    while True:
        container.reload()
        if container.status == "running":
            procs = container.top().get("Processes") or []
            if any(name in " ".join(p) for p in procs):
                return
        if container.status == "exited" or time.monotonic() >= deadline:
            raise AssertionError(
                f"{name!r} not running in {container.name} ({container.status}): {container.logs()!r}"
            )
        time.sleep(0.1)


def test_build_script_is_idempotent_and_fast(
    docker_client: docker.DockerClient, mkube_images: MkubeImages
) -> None:
    ids = {
        ref: docker_client.images.get(ref).id
        for ref in (mkube_images.busybox, mkube_images.hello, mkube_images.pause)
    }

    start = time.monotonic()
    proc = subprocess.run([str(BUILD_SCRIPT)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - start

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("up to date") == 3, proc.stdout
    assert elapsed < 10, f"warm build took {elapsed:.1f} s"
    assert {ref: docker_client.images.get(ref).id for ref in ids} == ids
    # The demo tags exist and name the same image.
    assert docker_client.images.get("localhost:5000/hello:1").id == ids[mkube_images.hello]
    assert docker_client.images.get("mkube/hello:latest").id == ids[mkube_images.hello]


def test_busybox_image_has_the_tools(docker_cleanup: DockerCleanup, busybox_image: str) -> None:
    tools = ["sh", "sleep", "httpd", "nc", "wget", "hostname", "ps", "kill"]
    script = f"for t in {' '.join(tools)}; do which $t || exit 1; done; stat -c %a /tmp; id -un"
    container = docker_cleanup.run(busybox_image, ["sh", "-c", script])

    result = container.wait(timeout=30)
    out = container.logs().decode()

    assert result["StatusCode"] == 0, out
    assert out.split() == [f"/bin/{t}" for t in tools] + ["1777", "root"]


def test_hello_serves_its_hostname_and_stops_promptly(
    docker_cleanup: DockerCleanup, hello_image: str
) -> None:
    hostname = f"hello-{uuid.uuid4().hex[:8]}"
    container = docker_cleanup.run(hello_image, hostname=hostname, ports={"80/tcp": ("127.0.0.1", None)})
    container.reload()
    port = int(container.ports["80/tcp"][0]["HostPort"])

    page = wait_http(f"http://127.0.0.1:{port}/")
    health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    missing = httpx.get(f"http://127.0.0.1:{port}/nope", timeout=5)

    assert hostname in page.text
    assert page.headers["content-type"].startswith("text/html")
    assert (health.status_code, health.text) == (200, "ok\n")
    assert missing.status_code == 404

    start = time.monotonic()
    container.stop(timeout=10)
    stop_seconds = time.monotonic() - start
    container.reload()
    assert stop_seconds < 2.0, f"docker stop took {stop_seconds:.1f} s"
    assert container.attrs["State"]["ExitCode"] == 0


def test_hello_listens_on_port_env(docker_cleanup: DockerCleanup, hello_image: str) -> None:
    container = docker_cleanup.run(
        hello_image,
        hostname="hello-port",
        environment={"PORT": "8080"},
        ports={"8080/tcp": ("127.0.0.1", None)},
    )
    container.reload()
    port = int(container.ports["8080/tcp"][0]["HostPort"])

    assert "hello-port" in wait_http(f"http://127.0.0.1:{port}/").text


def test_pause_stops_within_two_seconds(docker_cleanup: DockerCleanup, pause_image: str) -> None:
    container = docker_cleanup.run(pause_image)
    # The trap is installed before the first sleep starts: once sleep runs, TERM is handled.
    _wait_for_process(container, "sleep")

    start = time.monotonic()
    container.stop(timeout=10)
    stop_seconds = time.monotonic() - start
    container.reload()

    assert stop_seconds < 2.0, f"docker stop took {stop_seconds:.1f} s"
    assert container.attrs["State"]["ExitCode"] == 0


def test_push_and_pull_through_the_local_registry(
    docker_client: docker.DockerClient, registry: str, hello_image: str
) -> None:
    tag = uuid.uuid4().hex[:12]
    ref = f"{registry}/mkube-test/hello:{tag}"
    local_id = docker_client.images.get(hello_image).id
    docker_client.images.get(hello_image).tag(ref)
    try:
        push_image(docker_client, ref)
        tags = httpx.get(_registry_url(registry, "/v2/mkube-test/hello/tags/list"), timeout=5).json()
        assert tag in tags["tags"]

        docker_client.images.remove(ref)
        with pytest.raises(docker.errors.ImageNotFound):
            docker_client.images.get(ref)
        assert pull_image(docker_client, ref) == local_id
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(ref)


def test_build_script_pushes_to_a_registry(
    docker_client: docker.DockerClient, registry: str, mkube_images: MkubeImages
) -> None:
    pushed = [f"{registry}/hello:1", f"{registry}/busybox:latest"]
    try:
        proc = subprocess.run(
            [str(BUILD_SCRIPT), "--push", registry],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "1" in httpx.get(_registry_url(registry, "/v2/hello/tags/list"), timeout=5).json()["tags"]
        assert (
            "latest" in httpx.get(_registry_url(registry, "/v2/busybox/tags/list"), timeout=5).json()["tags"]
        )

        # What a node without the image would do: pull it by its registry name.
        docker_client.images.remove(pushed[0])
        assert pull_image(docker_client, pushed[0]) == docker_client.images.get(mkube_images.hello).id
    finally:
        # localhost:5000/hello:1 is one of build.sh's own tags; keep the demo tags there.
        if registry != "localhost:5000":
            for ref in pushed:
                with contextlib.suppress(docker.errors.ImageNotFound):
                    docker_client.images.remove(ref)
