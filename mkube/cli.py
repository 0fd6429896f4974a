"""The `mkube` launcher: the one place that wires components together.

    mkube server      API server + scheduler + controller manager in one process (like k3s server)
    mkube agent       kubelet + service proxy of one node (like k3s agent)
    mkube up          server and one local agent: a one-node cluster
    mkube apiserver | scheduler | controller-manager | kubelet | proxy    one component alone
    mkube reset       remove mkube's containers and state

Components run as threads of one process and talk to the API server over HTTP(S) only,
exactly as they do when run as separate processes; a shared `threading.Event` stops
them all on SIGINT/SIGTERM. Containers keep running when mkube stops (as with
Kubernetes); `mkube reset` removes them.

Secure by default (like k3s): the server serves HTTPS with its own CA (<data-dir>/tls),
every request needs a bearer token (admin: <data-dir>/kubeconfig.yaml; nodes: a
per-node token got for the join token <data-dir>/node-token), and the kubelet port
answers only the API server. `--insecure-http` turns all of that off, loudly.
"""

from __future__ import annotations

import logging
import shutil
import signal
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import httpx

from mkube.api.jointoken import JoinTokenError, parse_join_token
from mkube.apiserver import auth
from mkube.apiserver.options import ApiServerOptions
from mkube.apiserver.server import (
    apiserver_command,
    build_server,
    check_tls_sans,
    configure_logging,
    insecure_warning,
)
from mkube.client import bootstrap, kubeconfig

log = logging.getLogger("mkube.cli")

DEFAULT_DATA_DIR = Path.home() / ".mkube"
KUBECONFIG_NAME = "kubeconfig.yaml"
READY_TIMEOUT_S = 30.0


def _setup_logging(verbose: int) -> None:
    """Quiet by default: warnings, plus mkube's own lifecycle lines; -v info; -vv debug."""
    level = logging.DEBUG if verbose >= 2 else logging.INFO if verbose == 1 else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr, force=True)
    logging.getLogger("mkube.cli").setLevel(min(level, logging.INFO))
    for noisy in ("httpx", "httpcore", "apscheduler", "urllib3", "docker", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose >= 2 else logging.WARNING)


def _wait_ready(url: str, timeout: float, verify: bool | ssl.SSLContext = True, what: str = "API server") -> None:
    """Block until `url`/readyz answers 200; raise click.ClickException after `timeout`."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1.0, verify=verify).status_code == 200:
                return
        except httpx.HTTPError as exc:
            last = str(exc)
        time.sleep(0.05)
    raise click.ClickException(f"{what} at {url} not ready after {timeout:.0f}s {last}")


@dataclass
class Supervisor:
    """Runs component loops in threads; the first to fail (or a signal) stops them all."""

    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def install_signals(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop.set())

    def spawn(self, name: str, target: Callable[..., None], **kwargs: Any) -> None:
        def body() -> None:
            try:
                target(stop=self.stop, **kwargs)
            except Exception:  # a component crash stops the process loudly, never silently
                log.exception("%s failed; stopping", name)
                self.failed.append(name)
            finally:
                self.stop.set()

        thread = threading.Thread(target=body, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def wait(self, grace: float = 10.0) -> int:
        """Block until stopped; join the components; the exit code (1 if any failed)."""
        while not self.stop.wait(0.5):
            pass
        deadline = time.monotonic() + grace
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return 1 if self.failed else 0


# --------------------------------------------------------------------------- server


def _apiserver_options(data_dir: Path, port: int, bind_address: str, datastore_url: str | None,
                       verbose: int, extra: dict[str, Any]) -> ApiServerOptions:
    opts = ApiServerOptions(data_dir=data_dir, port=port, bind_address=bind_address, datastore_url=datastore_url,
                            log_format="text", log_level="debug" if verbose >= 2 else "info" if verbose else "warning")
    for key, value in extra.items():
        if value is not None:
            setattr(opts, key, value)
    return opts


def _local_url(opts: ApiServerOptions) -> str:
    host = "127.0.0.1" if opts.bind_address in ("0.0.0.0", "::", "") else opts.bind_address
    if ":" in host:
        host = f"[{host}]"
    return f"{'http' if opts.insecure_http else 'https'}://{host}:{opts.port}"


@dataclass(frozen=True)
class ServerInfo:
    """How to reach a started server: URL, and (unless --insecure-http) its CA file, the
    admin token and the node join token."""

    url: str
    ca_file: str | None = None
    admin_token: str | None = None
    join_token: str | None = None


def start_server(sup: Supervisor, opts: ApiServerOptions, controller_timers: dict[str, Any]) -> ServerInfo:
    """Start API server, scheduler and controller manager threads; return how to reach the
    API once ready, after writing the admin kubeconfig to `<data-dir>/kubeconfig.yaml`
    (0600: it holds the admin token). The scheduler and controller manager use the
    admin token over HTTPS, as any other client."""
    from mkube.controllers.main import run as run_controllers
    from mkube.scheduler.main import run as run_scheduler

    opts.data_dir.mkdir(parents=True, exist_ok=True)
    configure_logging(opts)
    security: auth.Security | None = None
    if opts.insecure_http:
        click.echo(insecure_warning(opts.port), err=True)
    else:
        security = auth.prepare(opts)
    server = build_server(opts, security)

    def serve(stop: threading.Event) -> None:
        def stop_when_asked() -> None:
            stop.wait()
            server.should_exit = True

        threading.Thread(target=stop_when_asked, daemon=True).start()
        server.run()

    sup.spawn("apiserver", serve)
    url = _local_url(opts)
    info = ServerInfo(url)
    if security is not None:
        info = ServerInfo(url, str(security.tls.ca_cert), security.admin_token, security.join_token)
    _wait_ready(url, READY_TIMEOUT_S, verify=bootstrap.ssl_context(info.ca_file) if info.ca_file else True)
    path = opts.data_dir / KUBECONFIG_NAME
    kubeconfig.write_kubeconfig(path, server=url, token=info.admin_token,
                                ca_data=security.tls.ca_pem if security is not None else None)
    click.echo(f"mkube: API server ready at {url}; admin kubeconfig: {path}", err=True)
    click.echo(f"mkube: export KUBECONFIG={path}", err=True)
    if security is not None:
        click.echo(f"mkube: node join token ({security.join_token_path}): {security.join_token}", err=True)
        click.echo(f"mkube: join a machine: mkube agent --server https://{_join_host(opts)}:{opts.port} "
                   f"--token $(cat {security.join_token_path})", err=True)
    sup.spawn("scheduler", run_scheduler, server_url=url, token=info.admin_token, ca_file=info.ca_file,
              switch_interval=None)
    sup.spawn("controller-manager", run_controllers, server_url=url, token=info.admin_token, ca_file=info.ca_file,
              **{k: v for k, v in controller_timers.items() if v is not None})
    return info


def _join_host(opts: ApiServerOptions) -> str:
    host = opts.advertise_address or opts.bind_address
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    return f"[{host}]" if ":" in host else host


@dataclass(frozen=True)
class AgentAuth:
    """What an agent's components use: the per-node token, the CA, the kubelet token."""

    token: str | None = None
    ca_file: str | None = None
    kubelet_token: str | None = None


def agent_auth(server_url: str, token: str | None, ca_file: str | None, node_name: str, data_dir: Path,
               timeout: float = 60.0) -> AgentAuth:
    """Join `server_url` as `node_name` (or reuse the credentials saved by an earlier join).

    For https: trust the CA named by the token's hash (fetched from /cacerts and checked)
    or `ca_file`, exchange the join token for a per-node token, and keep both under
    `<data-dir>/agent/` (0600). Raises click.ClickException with the reason on failure;
    an unreachable server is retried for `timeout` seconds."""
    if server_url.startswith("http://"):
        click.echo(f"WARNING: mkube: {server_url} is plain HTTP: no TLS and no node credentials; only for a server "
                   f"run with --insecure-http", err=True)
        return AgentAuth()
    if not server_url.startswith("https://"):
        raise click.BadParameter("expected https://HOST:PORT", param_hint="--server")
    state = bootstrap.AgentState(data_dir / "agent")
    if not token:
        saved = state.load(server_url, node_name)
        if saved is None:
            raise click.UsageError("--token is required to join (the token in the server's <data-dir>/node-token)")
        click.echo(f"mkube: using the credentials of node {node_name} saved in {state.dir}", err=True)
        return AgentAuth(saved.token, ca_file or str(state.ca_file), saved.kubelet_token)
    try:
        join_token = parse_join_token(token)
    except JoinTokenError as e:
        raise click.BadParameter(str(e), param_hint="--token") from None
    given_ca: bytes | None = None
    if ca_file:
        try:
            given_ca = Path(ca_file).read_bytes()
        except OSError as e:
            raise click.BadParameter(f"cannot read {ca_file}: {e.strerror or e}", param_hint="--ca-file") from None
    elif not join_token.ca_hash:
        raise click.UsageError("this join token has no CA hash (K10<hash>::node:<secret>): pass the full token "
                               "from the server's <data-dir>/node-token, or --ca-file")
    deadline = time.monotonic() + timeout
    while True:
        try:
            if given_ca is not None:
                pem = given_ca
                if join_token.ca_hash:
                    bootstrap.check_ca(pem, join_token.ca_hash, str(ca_file))
            else:
                assert join_token.ca_hash is not None
                pem = bootstrap.fetch_ca(server_url, join_token.ca_hash)
            ca_path = state.save_ca(pem)
            creds = bootstrap.join(server_url, str(ca_path), join_token, node_name, state.node_password())
            break
        except bootstrap.JoinError as e:
            if not e.retryable or time.monotonic() > deadline:
                raise click.ClickException(str(e)) from None
            log.warning("%s; retrying", e)
            time.sleep(1.0)
    state.save(server_url, creds)
    return AgentAuth(creds.token, str(ca_path), creds.kubelet_token)


def start_agent(sup: Supervisor, server_url: str, creds: AgentAuth, node_name: str, node_ip: str | None,
                docker_host: str | None, root_dir: Path, kubelet_port: int, **kubelet_options: Any) -> None:
    """Start the kubelet and the service proxy of one node as threads of this process.
    With a kubelet token, the kubelet's port answers only requests that carry it.
    `kubelet_options` are further KubeletOptions fields (None = the default)."""
    from mkube.kubelet.auth import bearer_token_authenticator
    from mkube.kubelet.main import run as run_kubelet
    from mkube.kubelet.proxy.main import run as run_proxy

    authenticate = bearer_token_authenticator(creds.kubelet_token) if creds.kubelet_token else None
    sup.spawn("kubelet", run_kubelet, server_url=server_url, node_name=node_name, token=creds.token,
              ca_file=creds.ca_file, authenticate=authenticate,
              node_ip=node_ip, docker_host=docker_host, root_dir=str(root_dir), port=kubelet_port,
              **kubelet_options)
    sup.spawn("proxy", run_proxy, server=server_url, token=creds.token, node_name=node_name, node_ip=node_ip,
              ca_file=creds.ca_file)


def server_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Flags shared by `mkube server` and `mkube up`: the API server's and the controller timers."""
    decorators = [
        click.option("--data-dir", type=click.Path(path_type=Path), default=DEFAULT_DATA_DIR, show_default=True,
                     help="State (SQLite database), kubeconfig and pod directories."),
        click.option("--port", type=int, default=6443, show_default=True, help="API server port."),
        click.option("--bind-address", default="127.0.0.1", show_default=True,
                     help="API server address (0.0.0.0 to accept other machines)."),
        click.option("--datastore-url", default=None, help="sqlite:///... (default) or postgresql://..."),
        click.option("--tls-san", "tls_sans", multiple=True, callback=lambda _c, _p, v: check_tls_sans(v),
                     help="Extra DNS name or IP of the API server's certificate (repeatable)."),
        click.option("--insecure-http", is_flag=True,
                     help="Plain HTTP, no authentication: anyone who can reach the port controls the cluster "
                          "(experiments only)."),
        click.option("--service-cluster-ip-range", default=None, help="CIDR of Service ClusterIPs."),
        click.option("--node-monitor-grace-period", type=float, default=None,
                     help="Seconds without heartbeat before a node is Ready=Unknown (default 40)."),
        click.option("--pod-eviction-timeout", type=int, default=None,
                     help="Seconds pods tolerate an unreachable node before eviction (default 300)."),
        click.option("-v", "--verbose", count=True, help="More logs (-vv for debug)."),
    ]
    for deco in reversed(decorators):
        func = deco(func)
    return func


@click.group()
def main() -> None:
    """mkube: a small container orchestrator that speaks the Kubernetes API."""


@main.command("server")
@server_options
def server_command(data_dir: Path, port: int, bind_address: str, datastore_url: str | None,
                   tls_sans: tuple[str, ...], insecure_http: bool,
                   service_cluster_ip_range: str | None, node_monitor_grace_period: float | None,
                   pod_eviction_timeout: int | None, verbose: int) -> None:
    """API server + scheduler + controller manager in one process."""
    _setup_logging(verbose)
    sup = Supervisor()
    sup.install_signals()
    opts = _apiserver_options(data_dir, port, bind_address, datastore_url, verbose,
                              {"service_cluster_ip_range": service_cluster_ip_range, "tls_sans": list(tls_sans),
                               "insecure_http": insecure_http})
    start_server(sup, opts, {"node_monitor_grace_period": node_monitor_grace_period,
                             "pod_eviction_timeout": pod_eviction_timeout})
    sys.exit(sup.wait())


@main.command("agent")
@click.option("--server", "server_url", required=True, help="API server URL, e.g. https://10.0.0.1:6443")
@click.option("--token", default=None,
              help="Node join token K10<ca-hash>::node:<secret> (the server's <data-dir>/node-token); "
                   "not needed again once joined.")
@click.option("--ca-file", type=click.Path(dir_okay=False), default=None,
              help="The server's CA certificate, instead of trusting the one the token's hash names.")
@click.option("--node-name", default=socket.gethostname(), show_default=True)
@click.option("--node-ip", default=None, help="IP other nodes reach this one at (default: default route's).")
@click.option("--docker-host", default=None, help="Docker endpoint (default: DOCKER_HOST or the local socket).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=DEFAULT_DATA_DIR, show_default=True)
@click.option("--kubelet-port", type=int, default=10250, show_default=True)
@click.option("--lease-renew-interval", type=float, default=None,
              help="Seconds between renewals of the node's Lease, its heartbeat (default 10; keep it well "
                   "below the server's --node-monitor-grace-period).")
@click.option("--node-status-update-frequency", type=float, default=None,
              help="Seconds between node status checks (default 10).")
@click.option("-v", "--verbose", count=True)
def agent_command(server_url: str, token: str | None, ca_file: str | None, node_name: str, node_ip: str | None,
                  docker_host: str | None, data_dir: Path, kubelet_port: int, lease_renew_interval: float | None,
                  node_status_update_frequency: float | None, verbose: int) -> None:
    """Kubelet + service proxy of this node, joining the cluster at --server."""
    _setup_logging(verbose)
    server_url = server_url.rstrip("/")
    creds = agent_auth(server_url, token, ca_file, node_name, data_dir)
    sup = Supervisor()
    sup.install_signals()
    start_agent(sup, server_url, creds, node_name, node_ip, docker_host, data_dir / "kubelet", kubelet_port,
                lease_renew_interval=lease_renew_interval, node_status_update_frequency=node_status_update_frequency)
    click.echo(f"mkube: node {node_name} joining {server_url}", err=True)
    sys.exit(sup.wait())


@main.command("up")
@server_options
@click.option("--node-name", default=socket.gethostname(), show_default=True)
@click.option("--node-ip", default="127.0.0.1", show_default=True,
              help="Address of this node: where NodePorts and pod ports listen.")
@click.option("--docker-host", default=None)
@click.option("--kubelet-port", type=int, default=10250, show_default=True)
def up_command(data_dir: Path, port: int, bind_address: str, datastore_url: str | None,
               tls_sans: tuple[str, ...], insecure_http: bool,
               service_cluster_ip_range: str | None, node_monitor_grace_period: float | None,
               pod_eviction_timeout: int | None, verbose: int, node_name: str, node_ip: str,
               docker_host: str | None, kubelet_port: int) -> None:
    """A one-node cluster: server and a local agent in one process."""
    _setup_logging(verbose)
    started = time.monotonic()
    sup = Supervisor()
    sup.install_signals()
    opts = _apiserver_options(data_dir, port, bind_address, datastore_url, verbose,
                              {"service_cluster_ip_range": service_cluster_ip_range,
                               "tls_sans": [*tls_sans, node_ip], "insecure_http": insecure_http})
    info = start_server(sup, opts, {"node_monitor_grace_period": node_monitor_grace_period,
                                    "pod_eviction_timeout": pod_eviction_timeout})
    creds = AgentAuth()
    if info.join_token is not None:  # the local agent joins like any other: join token -> node token
        try:
            creds = agent_auth(info.url, info.join_token, info.ca_file, node_name, data_dir, timeout=0)
        except click.ClickException:
            sup.stop.set()
            sup.wait()
            raise
    start_agent(sup, info.url, creds, node_name, node_ip, docker_host, data_dir / "kubelet", kubelet_port)
    _wait_node_ready(info, node_name, READY_TIMEOUT_S)
    click.echo(f"mkube: one-node cluster ready in {time.monotonic() - started:.1f}s (node {node_name})", err=True)
    sys.exit(sup.wait())


def _wait_node_ready(info: ServerInfo, node_name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    headers = {"Authorization": f"Bearer {info.admin_token}"} if info.admin_token else {}
    verify = bootstrap.ssl_context(info.ca_file) if info.ca_file else True
    while time.monotonic() < deadline:
        try:
            resp = httpx.get(f"{info.url}/api/v1/nodes/{node_name}", timeout=1.0, headers=headers, verify=verify)
            if resp.status_code == 200:
                conds = resp.json().get("status", {}).get("conditions") or []
                if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds):
                    return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise click.ClickException(f"node {node_name} not Ready after {timeout:.0f}s")


@main.command("reset")
@click.option("--data-dir", type=click.Path(path_type=Path), default=DEFAULT_DATA_DIR, show_default=True)
@click.option("--node-name", default=socket.gethostname(), show_default=True,
              help="Remove the containers of this node (the kubelet labels them io.mkube.node.name).")
@click.option("--docker-host", default=None)
@click.option("-y", "--yes", is_flag=True, help="Do not ask.")
def reset_command(data_dir: Path, node_name: str, docker_host: str | None, yes: bool) -> None:
    """Remove the containers mkube ran for --node-name and the state in --data-dir."""
    import docker

    client = docker.DockerClient(base_url=docker_host) if docker_host else docker.from_env()
    # only this node's: other clusters (or tests) may share the Docker engine
    containers = client.containers.list(all=True, filters={"label": f"io.mkube.node.name={node_name}"})
    if not yes:
        click.confirm(f"Remove {len(containers)} container(s) of node {node_name} and {data_dir}?", abort=True)
    for container in containers:
        container.remove(force=True)
    if data_dir.exists():
        shutil.rmtree(data_dir)
    click.echo(f"mkube: removed {len(containers)} container(s) of node {node_name} and {data_dir}")


def _passthrough(name: str, module: str, doc: str) -> None:
    """`mkube NAME ARGS...` runs the component's own argument parser (`--help` shows its flags)."""

    @main.command(name, help=doc, add_help_option=False,
                  context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def command(args: Sequence[str]) -> None:
        import importlib

        importlib.import_module(module).main(list(args))


main.add_command(apiserver_command, "apiserver")
_passthrough("scheduler", "mkube.scheduler.main", "Run the scheduler alone (--server URL).")
_passthrough("controller-manager", "mkube.controllers.main", "Run the controller manager alone (--server URL).")
_passthrough("kubelet", "mkube.kubelet.main", "Run the kubelet alone (--server URL --node-name N).")
_passthrough("proxy", "mkube.kubelet.proxy.main", "Run the service proxy alone (--server URL --node-name N).")


if __name__ == "__main__":
    main()
