"""Settings of one API server process."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ApiServerOptions:
    """Everything `create_app`/`run` need; every field has a usable default.

    `datastore_url` wins over `data_dir` (default URL: `sqlite:///<data_dir>/state.db`).
    """

    data_dir: Path = field(default_factory=lambda: Path("./mkube-data"))
    port: int = 6443
    bind_address: str = "127.0.0.1"
    datastore_url: str | None = None
    # Compaction: keep at least this many change-log rows; run every interval.
    compaction_keep: int = 10_000
    compaction_interval_seconds: float = 60.0
    max_request_body_bytes: int = 3 * 1024 * 1024
    # Watches: a BOOKMARK every this many seconds when the client allows them.
    watch_bookmark_interval_seconds: float = 10.0
    # Longest server-side watch when the client gives no timeoutSeconds (k8s: 30-60 min).
    watch_max_timeout_seconds: float = 1800.0
    # Service allocators (apiserver/allocator.py): ClusterIPs (the first one is the
    # `kubernetes` Service's) and NodePorts (inclusive range).
    service_cluster_ip_range: str = "10.96.0.0/12"
    service_node_port_range: tuple[int, int] = (30000, 32767)
    # Address of this server in the Endpoints of `default/kubernetes` (default: the bind
    # address, or the default route's address when bound to 0.0.0.0).
    advertise_address: str | None = None
    # Security (auth.py, pki.py): TLS with the certificates of <data_dir>/tls and bearer
    # tokens of <data_dir>/tokens. `insecure_http` turns both off (experiments only).
    insecure_http: bool = False
    tls_sans: list[str] = field(default_factory=list)  # extra SANs of the serving certificate
    # Log of unexpected exceptions and lifecycle; "json" for structured lines.
    log_format: str = "json"
    log_level: str = "info"

    @property
    def effective_datastore_url(self) -> str:
        if self.datastore_url:
            return self.datastore_url
        return f"sqlite:///{Path(self.data_dir).resolve() / 'state.db'}"
