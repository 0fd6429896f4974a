"""The global flags of every command and the client they describe.

Resolution order, as kubectl's: `--kubeconfig`, else $KUBECONFIG, ~/.kube/config,
~/.mkube/kubeconfig.yaml; `--context` picks a context; `--server`/`--token`/
`--insecure-skip-tls-verify` override what the context says (with `--server` no
kubeconfig is needed at all); the namespace is `-n`, else the context's, else "default".
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from mkube.client import kubeconfig
from mkube.client.errors import ConfigError
from mkube.client.kubeconfig import ResolvedConfig
from mkube.client.rest import Client

USER_AGENT = "mkubectl/0.1.0"


@dataclass
class Settings:
    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None
    server: str | None = None
    token: str | None = None
    insecure_skip_tls_verify: bool = False
    verbosity: int = 0
    request_timeout: float = 30.0


class Kube:
    """What a command needs: the resolved connection, the namespace, a lazily made client."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: Client | None = None

    @cached_property
    def config(self) -> ResolvedConfig:
        """The connection settings. Raises ConfigError when nothing says where the server is."""
        s = self.settings
        try:
            resolved = kubeconfig.load_default(s.kubeconfig).resolve(s.context)
        except ConfigError:
            if not s.server:
                raise
            resolved = ResolvedConfig(context="", server=s.server)
        if s.server:
            resolved.server = s.server
        if s.token:
            resolved.token = s.token
        if s.insecure_skip_tls_verify:
            resolved.insecure_skip_tls_verify = True
        return resolved

    @property
    def namespace(self) -> str:
        """-n, else the context's namespace, else "default"."""
        if self.settings.namespace:
            return self.settings.namespace
        try:
            return self.config.namespace or "default"
        except ConfigError:
            return "default"

    @property
    def namespace_explicit(self) -> bool:
        """Whether -n was given (objects naming another namespace are then refused)."""
        return bool(self.settings.namespace)

    @property
    def client(self) -> Client:
        if self._client is None:
            cfg = self.config
            self._client = Client(cfg.server, token=cfg.token, ca_file=cfg.ca_file, ca_data=cfg.ca_data,
                                  insecure_skip_verify=cfg.insecure_skip_tls_verify,
                                  client_cert=cfg.client_certificate, client_key=cfg.client_key,
                                  namespace=self.namespace, user_agent=USER_AGENT,
                                  timeout=self.settings.request_timeout)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
