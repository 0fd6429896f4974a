"""Read and write kubeconfig files (the `kubectl` format, v1 Config).

`load(path)` parses one file; `load_default()` follows kubectl's search order plus
mkube's own file: $KUBECONFIG (colon-separated, first file wins per entry),
~/.kube/config, ~/.mkube/kubeconfig.yaml. `KubeConfig.resolve(context)` gives the
connection settings of one context with relative certificate paths made absolute
(relative to the file that named them, as kubectl does).
"""

from __future__ import annotations

import base64
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mkube.client.errors import ConfigError

MKUBE_KUBECONFIG = Path("~/.mkube/kubeconfig.yaml")


@dataclass
class Cluster:
    server: str
    certificate_authority: str | None = None  # a file path (absolute after load)
    certificate_authority_data: bytes | None = None  # PEM (decoded from base64)
    insecure_skip_tls_verify: bool = False


@dataclass
class User:
    token: str | None = None
    token_file: str | None = None
    client_certificate: str | None = None
    client_key: str | None = None


@dataclass
class Context:
    cluster: str
    user: str | None = None
    namespace: str | None = None


@dataclass
class ResolvedConfig:
    """What a client needs to connect: one context's cluster and user, merged."""

    context: str
    server: str
    token: str | None = None
    ca_file: str | None = None
    ca_data: bytes | None = None
    insecure_skip_tls_verify: bool = False
    namespace: str = "default"
    client_certificate: str | None = None
    client_key: str | None = None


@dataclass
class KubeConfig:
    clusters: dict[str, Cluster] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    contexts: dict[str, Context] = field(default_factory=dict)
    current_context: str | None = None
    paths: list[Path] = field(default_factory=list)  # the files it was read from

    def resolve(self, context: str | None = None) -> ResolvedConfig:
        """The settings of `context` (default: current-context). Raises ConfigError."""
        where = ", ".join(str(p) for p in self.paths) or "kubeconfig"
        name = context or self.current_context
        if not name:
            if len(self.contexts) == 1:
                name = next(iter(self.contexts))
            else:
                raise ConfigError(f"{where}: no current-context set; pass a context "
                                  f"(one of: {', '.join(sorted(self.contexts)) or 'none'})")
        ctx = self.contexts.get(name)
        if ctx is None:
            raise ConfigError(f'{where}: context "{name}" not found')
        cluster = self.clusters.get(ctx.cluster)
        if cluster is None:
            raise ConfigError(f'{where}: cluster "{ctx.cluster}" of context "{name}" not found')
        if not cluster.server:
            raise ConfigError(f'{where}: cluster "{ctx.cluster}" has no server')
        user = self.users.get(ctx.user or "", User())
        token = user.token
        if token is None and user.token_file:
            try:
                token = Path(user.token_file).read_text().strip()
            except OSError as e:
                raise ConfigError(f"{where}: cannot read token file {user.token_file}: {e}") from e
        return ResolvedConfig(
            context=name, server=cluster.server, token=token, ca_file=cluster.certificate_authority,
            ca_data=cluster.certificate_authority_data,
            insecure_skip_tls_verify=cluster.insecure_skip_tls_verify,
            namespace=ctx.namespace or "default",
            client_certificate=user.client_certificate, client_key=user.client_key)


def _named(doc: dict[str, Any], section: str, inner: str, path: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for entry in doc.get(section) or []:
        if not isinstance(entry, dict) or not entry.get("name"):
            raise ConfigError(f"{path}: every entry of {section} needs a name")
        body = entry.get(inner) or {}
        if not isinstance(body, dict):
            raise ConfigError(f"{path}: {section}[{entry['name']}].{inner} must be a mapping")
        out[str(entry["name"])] = body
    return out


def _abs(value: Any, base: Path) -> str | None:
    if not value:
        return None
    p = Path(str(value)).expanduser()
    return str(p if p.is_absolute() else (base / p))


def _b64(value: Any, path: Path, what: str) -> bytes | None:
    if not value:
        return None
    try:
        return base64.b64decode(str(value), validate=False)
    except ValueError as e:
        raise ConfigError(f"{path}: {what} is not valid base64") from e


def load(path: str | os.PathLike[str]) -> KubeConfig:
    """Parse one kubeconfig file. Raises ConfigError (missing file, bad YAML, bad shape)."""
    p = Path(path).expanduser()
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read kubeconfig {p}: {e.strerror or e}") from e
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from e
    if not isinstance(doc, dict):
        raise ConfigError(f"{p}: a kubeconfig must be a mapping")
    base = p.parent.resolve()
    cfg = KubeConfig(current_context=doc.get("current-context") or None, paths=[p])
    for name, c in _named(doc, "clusters", "cluster", p).items():
        cfg.clusters[name] = Cluster(
            server=str(c.get("server") or ""),
            certificate_authority=_abs(c.get("certificate-authority"), base),
            certificate_authority_data=_b64(c.get("certificate-authority-data"), p,
                                            f"cluster {name} certificate-authority-data"),
            insecure_skip_tls_verify=bool(c.get("insecure-skip-tls-verify", False)))
    for name, u in _named(doc, "users", "user", p).items():
        cfg.users[name] = User(token=u.get("token") or None, token_file=_abs(u.get("tokenFile"), base),
                               client_certificate=_abs(u.get("client-certificate"), base),
                               client_key=_abs(u.get("client-key"), base))
    for name, c in _named(doc, "contexts", "context", p).items():
        cfg.contexts[name] = Context(cluster=str(c.get("cluster") or ""), user=c.get("user") or None,
                                     namespace=c.get("namespace") or None)
    return cfg


def merge(configs: list[KubeConfig]) -> KubeConfig:
    """Merge like kubectl: the first file to define a name (or current-context) wins."""
    out = KubeConfig()
    for cfg in configs:
        for name, cluster in cfg.clusters.items():
            out.clusters.setdefault(name, cluster)
        for name, user in cfg.users.items():
            out.users.setdefault(name, user)
        for name, ctx in cfg.contexts.items():
            out.contexts.setdefault(name, ctx)
        out.current_context = out.current_context or cfg.current_context
        out.paths.extend(cfg.paths)
    return out


def default_paths() -> list[Path]:
    """The files `load_default` reads: $KUBECONFIG's entries, else the first existing of
    ~/.kube/config and ~/.mkube/kubeconfig.yaml."""
    env = os.environ.get("KUBECONFIG")
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    for candidate in (Path("~/.kube/config"), MKUBE_KUBECONFIG):
        p = candidate.expanduser()
        if p.exists():
            return [p]
    return []


def load_default(path: str | os.PathLike[str] | None = None) -> KubeConfig:
    """`path` if given, else the default search order (see module docstring)."""
    if path is not None:
        return load(path)
    paths = default_paths()
    existing = [p for p in paths if p.exists()]
    if not existing:
        tried = ", ".join(str(p) for p in paths) or f"~/.kube/config, {MKUBE_KUBECONFIG}"
        raise ConfigError(f"no kubeconfig found (looked at {tried}); pass --server or set KUBECONFIG")
    return merge([load(p) for p in existing])


def to_dict(server: str, token: str | None = None, ca_data: bytes | str | None = None,
            cluster_name: str = "mkube", user: str = "admin", namespace: str | None = None,
            insecure_skip_tls_verify: bool = False) -> dict[str, Any]:
    """A one-cluster, one-user, one-context kubeconfig document (context named like the cluster)."""
    cluster: dict[str, Any] = {"server": server}
    if ca_data:
        pem = ca_data.encode() if isinstance(ca_data, str) else ca_data
        cluster["certificate-authority-data"] = base64.b64encode(pem).decode()
    if insecure_skip_tls_verify:
        cluster["insecure-skip-tls-verify"] = True
    user_body: dict[str, Any] = {"token": token} if token else {}
    context: dict[str, Any] = {"cluster": cluster_name, "user": user}
    if namespace:
        context["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": cluster_name, "cluster": cluster}],
        "users": [{"name": user, "user": user_body}],
        "contexts": [{"name": cluster_name, "context": context}],
        "current-context": cluster_name,
    }


def write_kubeconfig(path: str | os.PathLike[str], server: str, token: str | None = None,
                     ca_data: bytes | str | None = None, cluster_name: str = "mkube",
                     user: str = "admin", namespace: str | None = None,
                     insecure_skip_tls_verify: bool = False) -> Path:
    """Write a kubeconfig for `server` to `path` atomically, readable by the owner only (0600).

    `ca_data` is the CA certificate as PEM (stored base64-encoded, as kubectl expects).
    Parent directories are created (0700). Returns the path written.
    """
    p = Path(path).expanduser()
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    text = yaml.safe_dump(to_dict(server, token, ca_data, cluster_name, user, namespace,
                                  insecure_skip_tls_verify), sort_keys=False)
    fd, tmp = tempfile.mkstemp(prefix=".kubeconfig.", dir=p.parent)  # mkstemp creates 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p
