"""The requests mkubectl sends (no network: httpx.MockTransport behind the real Client).

These pin the wire protocol other components serve: the Table Accept header, the exec
and log query parameters, the patch content types, DeleteOptions."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from mkube.client import rest
from mkube.kubectl import context
from mkube.kubectl.main import run

Handler = Callable[[httpx.Request], httpx.Response]
SERVER = "http://mkube.test:6443"


@dataclass
class Api:
    """Canned answers by (method, path); records every request."""

    answers: dict[tuple[str, str], Any] = field(default_factory=dict)
    seen: list[httpx.Request] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        answer = self.answers.get((request.method, request.url.path))
        if answer is None:
            return httpx.Response(404, json={"kind": "Status", "code": 404, "reason": "NotFound",
                                             "message": f"{request.url.path} not found"})
        if isinstance(answer, httpx.Response):
            return answer
        if isinstance(answer, str):
            return httpx.Response(200, text=answer, headers={"content-type": "text/plain"})
        return httpx.Response(200, json=answer)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    recorder = Api()
    real = rest.Client

    def client(*args: Any, **kwargs: Any) -> rest.Client:
        kwargs["transport"] = httpx.MockTransport(recorder.handle)
        return real(*args, **kwargs)

    monkeypatch.setattr(context, "Client", client)
    yield recorder


def mk(*args: str) -> int:
    return run(["-s", SERVER, *args])


POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
       "spec": {"containers": [{"name": "app", "image": "x"}, {"name": "side", "image": "y"}]}}


def test_get_asks_for_a_table(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    api.answers[("GET", "/api/v1/namespaces/default/pods")] = {"kind": "PodList", "apiVersion": "v1",
                                                               "metadata": {}, "items": [POD]}
    assert mk("get", "pods", "-l", "app=web") == 0
    req = api.seen[0]
    assert req.headers["accept"].startswith("application/json;as=Table;v=v1;g=meta.k8s.io")
    assert req.url.params["labelSelector"] == "app=web" and req.url.params["limit"] == "500"
    # a server answering with a plain list still gets a proper table
    assert capsys.readouterr().out.splitlines()[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]


def test_exec_posts_command_and_container(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    api.answers[("GET", "/api/v1/namespaces/default/pods/p")] = POD
    api.answers[("POST", "/api/v1/namespaces/default/pods/p/exec")] = {
        "kind": "ExecResult", "apiVersion": "v1", "exitCode": 0, "output": "file1\nfile2\n"}
    assert mk("exec", "p", "-c", "side", "--", "ls", "-l", "/tmp") == 0
    req = api.seen[-1]
    assert req.method == "POST"
    assert req.url.params.get_list("command") == ["ls", "-l", "/tmp"]
    assert (req.url.params["container"], req.url.params["stdout"], req.url.params["stderr"]) == (
        "side", "true", "true")
    assert capsys.readouterr().out == "file1\nfile2\n"


def test_exec_exits_with_the_commands_exit_code(api: Api) -> None:
    api.answers[("GET", "/api/v1/namespaces/default/pods/p")] = POD
    api.answers[("POST", "/api/v1/namespaces/default/pods/p/exec")] = {
        "kind": "ExecResult", "apiVersion": "v1", "exitCode": 3, "output": ""}
    assert mk("exec", "p", "-c", "side", "--", "false") == 3


def test_logs_parameters(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    api.answers[("GET", "/api/v1/namespaces/default/pods/p")] = POD
    api.answers[("GET", "/api/v1/namespaces/default/pods/p/log")] = "line 1\nline 2\n"
    assert mk("logs", "p", "--tail=5", "--since=2m", "--timestamps", "--previous") == 0
    params = api.seen[-1].url.params
    assert dict(params) == {"container": "app", "tailLines": "5", "previous": "true", "sinceSeconds": "120",
                            "timestamps": "true"}
    out, err = capsys.readouterr()
    assert out == "line 1\nline 2\n"
    assert err == 'Defaulted container "app" out of: app, side\n'


def test_scale_patches_the_scale_subresource(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    api.answers[("PATCH", "/apis/apps/v1/namespaces/default/deployments/web/scale")] = {
        "kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {"name": "web"}, "spec": {"replicas": 3}}
    assert mk("scale", "deploy/web", "--replicas=3") == 0
    req = api.seen[-1]
    assert req.headers["content-type"] == "application/merge-patch+json"
    assert json.loads(req.content) == {"spec": {"replicas": 3}}
    assert capsys.readouterr().out == "deployment.apps/web scaled\n"


def test_delete_sends_delete_options(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    path = "/api/v1/namespaces/default/pods/p"
    api.answers[("DELETE", path)] = POD
    assert mk("delete", "pod", "p", "--now", "--wait=false", "--cascade=foreground") == 0
    body = json.loads(api.seen[-1].content)
    assert body == {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground",
                    "gracePeriodSeconds": 1}
    assert capsys.readouterr().out == 'pod "p" deleted\n'


def test_apply_sends_a_strategic_merge_patch(api: Api, capsys: pytest.CaptureFixture[str],
                                             tmp_path: Any) -> None:
    live = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "default", "resourceVersion": "5"}, "data": {"a": "1"}}
    api.answers[("GET", "/api/v1/namespaces/default/configmaps/c")] = live
    api.answers[("PATCH", "/api/v1/namespaces/default/configmaps/c")] = live
    f = tmp_path / "c.yaml"
    f.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: '2'\n")
    assert mk("apply", "-f", str(f)) == 0
    req = api.seen[-1]
    assert req.headers["content-type"] == "application/strategic-merge-patch+json"
    patch = json.loads(req.content)
    assert patch["data"] == {"a": "2"}
    assert "kubectl.kubernetes.io/last-applied-configuration" in patch["metadata"]["annotations"]
    assert capsys.readouterr().out == "configmap/c configured\n"


def test_server_errors_without_status_body_stay_one_line(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    api.answers[("GET", "/apis/apps/v1/namespaces/default/deployments/web")] = httpx.Response(502, text="bad gw")
    assert mk("get", "deploy", "web", "-o", "yaml") == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("Error from server (")
