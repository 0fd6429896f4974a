"""kubeconfig read/write and Client.from_kubeconfig."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import httpx
import pytest
import yaml

from mkube.client import kubeconfig
from mkube.client.errors import ConfigError
from mkube.client.rest import Client

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    return home


def test_write_then_load_round_trips_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "kubeconfig.yaml"
    written = kubeconfig.write_kubeconfig(path, "https://127.0.0.1:6443", token="s3cret", ca_data=PEM)
    assert written == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = yaml.safe_load(path.read_text())
    assert doc["current-context"] == "mkube"
    assert doc["clusters"][0]["cluster"]["certificate-authority-data"] == base64.b64encode(PEM.encode()).decode()
    cfg = kubeconfig.load(path).resolve()
    assert cfg.server == "https://127.0.0.1:6443"
    assert cfg.token == "s3cret"
    assert cfg.ca_data == PEM.encode()
    assert cfg.namespace == "default"
    assert cfg.context == "mkube"


def test_overwriting_an_existing_file_keeps_it_private(tmp_path: Path) -> None:
    (tmp_path / "kc").mkdir()
    path = tmp_path / "kc" / "config"
    path.write_text("old")
    path.chmod(0o644)
    kubeconfig.write_kubeconfig(path, "http://127.0.0.1:8080", cluster_name="c1", user="bob", namespace="dev")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    cfg = kubeconfig.load(path)
    assert set(cfg.contexts) == {"c1"}
    assert cfg.contexts["c1"].user == "bob"
    assert cfg.resolve().namespace == "dev"
    assert cfg.resolve().token is None
    assert list(path.parent.iterdir()) == [path]  # no temp file left behind


def test_kubeconfig_is_readable_by_kubectl(tmp_path: Path) -> None:
    """The official Python client (same format as kubectl) understands what we write."""
    from kubernetes import config as kconfig

    path = tmp_path / "config"
    kubeconfig.write_kubeconfig(path, "https://127.0.0.1:6443", token="abc", ca_data=PEM)
    contexts, active = kconfig.list_kube_config_contexts(str(path))
    assert active["name"] == "mkube"
    assert active["context"] == {"cluster": "mkube", "user": "admin"}


def _multi(path: Path, base: Path) -> None:
    (base / "ca.crt").write_text(PEM)
    doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": "a",
        "clusters": [
            {"name": "ca", "cluster": {"server": "https://a:6443", "certificate-authority": "ca.crt"}},
            {"name": "cb", "cluster": {"server": "https://b:6443", "insecure-skip-tls-verify": True}},
        ],
        "users": [{"name": "ua", "user": {"token": "ta"}}, {"name": "ub", "user": {"tokenFile": "tok"}}],
        "contexts": [
            {"name": "a", "context": {"cluster": "ca", "user": "ua"}},
            {"name": "b", "context": {"cluster": "cb", "user": "ub", "namespace": "kube-system"}},
        ],
    }
    (base / "tok").write_text("tb\n")
    path.write_text(yaml.safe_dump(doc))


def test_contexts_relative_paths_and_token_file(tmp_path: Path) -> None:
    path = tmp_path / "config"
    _multi(path, tmp_path)
    cfg = kubeconfig.load(path)
    a = cfg.resolve()
    assert a.server == "https://a:6443"
    assert a.ca_file == str(tmp_path.resolve() / "ca.crt")
    assert a.token == "ta"
    b = cfg.resolve("b")
    assert b.insecure_skip_tls_verify
    assert b.token == "tb"
    assert b.namespace == "kube-system"
    with pytest.raises(ConfigError, match='context "nope" not found'):
        cfg.resolve("nope")


def test_errors_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read kubeconfig"):
        kubeconfig.load(tmp_path / "missing")
    bad = tmp_path / "bad"
    bad.write_text("clusters: [ {")
    with pytest.raises(ConfigError, match="not valid YAML"):
        kubeconfig.load(bad)
    noserver = tmp_path / "noserver"
    noserver.write_text(yaml.safe_dump({"clusters": [{"name": "c", "cluster": {}}],
                                        "contexts": [{"name": "x", "context": {"cluster": "c"}}]}))
    with pytest.raises(ConfigError, match="has no server"):
        kubeconfig.load(noserver).resolve()


def test_search_order_kubeconfig_env_then_kube_then_mkube(tmp_path: Path, _isolated_home: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="no kubeconfig found"):
        kubeconfig.load_default()
    mkube_file = _isolated_home / ".mkube" / "kubeconfig.yaml"
    kubeconfig.write_kubeconfig(mkube_file, "http://mkube:1")
    assert kubeconfig.load_default().resolve().server == "http://mkube:1"
    kubeconfig.write_kubeconfig(_isolated_home / ".kube" / "config", "http://kube:2")
    assert kubeconfig.load_default().resolve().server == "http://kube:2"
    first = tmp_path / "first"
    second = tmp_path / "second"
    kubeconfig.write_kubeconfig(first, "http://first:3", cluster_name="one")
    kubeconfig.write_kubeconfig(second, "http://second:4", cluster_name="two")
    monkeypatch.setenv("KUBECONFIG", f"{first}:{tmp_path / 'absent'}:{second}")
    merged = kubeconfig.load_default()
    assert merged.current_context == "one"  # first file wins
    assert merged.resolve().server == "http://first:3"
    assert merged.resolve("two").server == "http://second:4"


def test_client_from_kubeconfig_sends_token_and_uses_namespace(tmp_path: Path) -> None:
    path = tmp_path / "config"
    kubeconfig.write_kubeconfig(path, "http://127.0.0.1:1", token="tok", namespace="team")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p"}})

    client = Client.from_kubeconfig(path, transport=httpx.MockTransport(handler))
    assert client.server == "http://127.0.0.1:1"
    assert client.default_namespace == "team"
    client.get_raw("pods", "p")
    assert seen[0].headers["Authorization"] == "Bearer tok"
    assert seen[0].url.path == "/api/v1/namespaces/team/pods/p"
    client.close()
