"""Running the API server: `run(options)` (uvicorn) and the `apiserver` CLI command.

Secure by default: HTTPS (certificates in <data-dir>/tls) and bearer tokens (in
<data-dir>/tokens); `--insecure-http` serves plain HTTP without authentication.
"""

from __future__ import annotations

import gc
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mkube.apiserver.options import ApiServerOptions

if TYPE_CHECKING:
    import uvicorn

    from mkube.apiserver.auth import Security

__all__ = ["ApiServerOptions", "apiserver_command", "run"]

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, msg, extra fields, traceback."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname,
                               "logger": record.name, "msg": record.getMessage()}
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                out[key] = value if isinstance(value, str | int | float | bool | None) else str(value)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def configure_logging(options: ApiServerOptions) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if options.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger("mkube")
    root.handlers[:] = [handler]
    root.setLevel(options.log_level.upper())
    root.propagate = False


def check_tls_sans(values: tuple[str, ...]) -> tuple[str, ...]:
    """The --tls-san values, or click.BadParameter naming the bad one."""
    from mkube.apiserver.pki import san_error

    for value in values:
        err = san_error(value.strip())
        if err:
            raise click.BadParameter(err, param_hint="--tls-san")
    return tuple(v.strip() for v in values)


def insecure_warning(port: int) -> str:
    return f"WARNING: mkube: --insecure-http: anyone who can reach port {port} controls this cluster"


def build_server(options: ApiServerOptions, security: Security | None = None) -> uvicorn.Server:
    """The uvicorn server of the API (not started). In a non-main thread `run()` installs
    no signal handlers; set `should_exit = True` to stop it (what `mkube server` does).

    HTTPS with the certificates of `security` (default: `auth.prepare(options)`, made
    on first start), unless `options.insecure_http`."""
    import uvicorn

    from mkube.apiserver import auth
    from mkube.apiserver.app import create_app

    tls: dict[str, Any] = {}
    if not options.insecure_http:
        security = security or auth.prepare(options)
        tls = {"ssl_certfile": str(security.tls.cert), "ssl_keyfile": str(security.tls.key)}
    app = create_app(options, security=security)
    config = uvicorn.Config(app, host=options.bind_address, port=options.port,
                            log_level="warning", access_log=False, lifespan="on",
                            timeout_keep_alive=60, timeout_graceful_shutdown=5, loop="auto", http="auto", **tls)

    class ApiServer(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            # What exists once the server is up (modules, pydantic schemas, routes: ~100k
            # objects) lives as long as the process. Frozen, it is left out of the
            # cyclic GC's full collections, which otherwise walked all of it: measured
            # 70-85 ms each, the p99 latency of every request in flight then.
            gc.collect()
            gc.freeze()

        async def shutdown(self, sockets: Any = None) -> None:
            # open watches would hold the graceful shutdown for its whole timeout
            ctx = getattr(app.state, "ctx", None)
            if ctx is not None:
                ctx.hub.end_watches()
            await super().shutdown(sockets)

    return ApiServer(config)


def run(options: ApiServerOptions) -> None:
    """Serve until SIGINT/SIGTERM (uvicorn handles both and shuts down cleanly)."""
    configure_logging(options)
    if options.insecure_http:
        click.echo(insecure_warning(options.port), err=True)
        build_server(options).run()
        return
    from mkube.apiserver import auth

    security = auth.prepare(options)
    click.echo(f"mkube apiserver: https://{options.bind_address}:{options.port}; CA {security.tls.ca_cert}; "
               f"admin token in {security.authenticator.tokens_dir / 'admin'}; node join token in "
               f"{security.join_token_path}", err=True)
    build_server(options, security).run()


@click.command("apiserver")
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path("./mkube-data"), show_default=True,
              help="Directory of the default SQLite database (state.db).")
@click.option("--port", type=int, default=6443, show_default=True)
@click.option("--bind-address", default="127.0.0.1", show_default=True)
@click.option("--datastore-url", default=None, help="SQLAlchemy URL (sqlite:///... or postgresql://...).")
@click.option("--compaction-keep", type=int, default=10_000, show_default=True,
              help="Change-log rows kept by compaction.")
@click.option("--compaction-interval", type=float, default=60.0, show_default=True, help="Seconds.")
@click.option("--max-request-body-bytes", type=int, default=3 * 1024 * 1024, show_default=True)
@click.option("--watch-bookmark-interval", type=float, default=10.0, show_default=True, help="Seconds.")
@click.option("--log-format", type=click.Choice(["json", "text"]), default="json", show_default=True)
@click.option("--log-level", default="info", show_default=True)
@click.option("--service-cluster-ip-range", default="10.96.0.0/12", show_default=True,
              help="CIDR of Service ClusterIPs (the first address is the kubernetes Service's).")
@click.option("--service-node-port-range", default="30000-32767", show_default=True,
              help="NodePort range FIRST-LAST (inclusive).")
@click.option("--advertise-address", default=None,
              help="IP of this server in the kubernetes Service's Endpoints (default: bind address).")
@click.option("--tls-san", "tls_sans", multiple=True, callback=lambda _c, _p, v: check_tls_sans(v),
              help="Extra DNS name or IP of the serving certificate (repeatable).")
@click.option("--insecure-http", is_flag=True,
              help="Plain HTTP without authentication (experiments only: anyone who can reach the port "
                   "controls the cluster).")
def apiserver_command(data_dir: Path, port: int, bind_address: str, datastore_url: str | None,
                      compaction_keep: int, compaction_interval: float, max_request_body_bytes: int,
                      watch_bookmark_interval: float, log_format: str, log_level: str,
                      service_cluster_ip_range: str, service_node_port_range: str,
                      advertise_address: str | None, tls_sans: tuple[str, ...], insecure_http: bool) -> None:
    """Run the API server alone."""
    first, sep, last = service_node_port_range.partition("-")
    if not sep or not first.strip().isdigit() or not last.strip().isdigit():
        raise click.BadParameter("expected FIRST-LAST, e.g. 30000-32767", param_hint="--service-node-port-range")
    run(ApiServerOptions(data_dir=data_dir, port=port, bind_address=bind_address, datastore_url=datastore_url,
                         compaction_keep=compaction_keep, compaction_interval_seconds=compaction_interval,
                         max_request_body_bytes=max_request_body_bytes,
                         watch_bookmark_interval_seconds=watch_bookmark_interval,
                         log_format=log_format, log_level=log_level,
                         service_cluster_ip_range=service_cluster_ip_range,
                         service_node_port_range=(int(first), int(last)),
                         advertise_address=advertise_address, tls_sans=list(tls_sans),
                         insecure_http=insecure_http))
