"""Pod volumes on the node, and the ConfigMap/Secret data behind env and volumes.

Layout under the kubelet's root dir (kept for the pod's life, removed with it):

    <root>/pods/<uid>/volumes/empty-dir/<volume>     emptyDir (mode 0777)
    <root>/pods/<uid>/volumes/configmap/<volume>/    one file per key (or per item path)
    <root>/pods/<uid>/volumes/secret/<volume>/       one file per key, base64-decoded

hostPath volumes are the host path itself (created for DirectoryOrCreate/FileOrCreate,
checked for Directory/File/Socket/...). ConfigMap and Secret files get `items[].mode`,
else `defaultMode` (0644 by default); files are replaced atomically (write + rename)
and rewritten when the object changes, keys that disappeared are removed.
"""

from __future__ import annotations

import base64
import binascii
import os
import shutil
import stat
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from mkube.api.errors import NotFound
from mkube.api.types import ConfigMap, KeyToPath, Pod, Secret, Volume
from mkube.client import BaseClient

DEFAULT_FILE_MODE = 0o644

CONFIGMAP = "configmap"
SECRET = "secret"


class VolumeError(Exception):
    """A volume cannot be set up (the kubelet's FailedMount)."""

    def __init__(self, volume: str, message: str) -> None:
        super().__init__(f'MountVolume.SetUp failed for volume "{volume}" : {message}')
        self.volume = volume


def _b64(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=False)
    except (binascii.Error, ValueError):
        return value.encode()


class ConfigSource:
    """ConfigMap and Secret contents by GET, cached for `ttl` seconds (a pod's containers
    and volumes read the same objects within one sync). Thread-safe."""

    def __init__(self, client: BaseClient, ttl: float = 1.0) -> None:
        self.client = client
        self.ttl = ttl
        self._cache: dict[tuple[str, str, str], tuple[float, dict[str, bytes] | None]] = {}
        self._lock = threading.Lock()

    def get(self, kind: str, namespace: str, name: str) -> dict[str, bytes] | None:
        """The object's data (keys -> bytes), None if it does not exist. ApiErrors other
        than NotFound propagate (the sync is retried)."""
        key = (kind, namespace, name)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
        data: dict[str, bytes] | None
        try:
            if kind == CONFIGMAP:
                cm = self.client.get(ConfigMap, name, namespace)
                data = {k: v.encode() for k, v in (cm.data or {}).items()}
                data.update({k: _b64(v) for k, v in (cm.binary_data or {}).items()})
            elif kind == SECRET:
                sec = self.client.get(Secret, name, namespace)
                data = {k: _b64(v) for k, v in (sec.data or {}).items()}
                data.update({k: v.encode() for k, v in (sec.string_data or {}).items()})
            else:
                raise ValueError(f"unknown config kind {kind!r}")
        except NotFound:
            data = None
        with self._lock:
            self._cache[key] = (now + self.ttl, data)
            if len(self._cache) > 4096:
                self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
        return data

    def lookup(self, kind: str, namespace: str, name: str) -> Mapping[str, str] | None:
        """The `podspec.Lookup` view: values decoded as UTF-8 text."""
        data = self.get(kind, namespace, name)
        if data is None:
            return None
        return {k: v.decode("utf-8", "replace") for k, v in data.items()}

    def invalidate(self) -> None:
        with self._lock:
            self._cache.clear()


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    try:
        st = path.lstat()
        if stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == mode and path.read_bytes() == data:
            return
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _project(volume: str, kind: str, name: str, data: Mapping[str, bytes], items: list[KeyToPath] | None,
             default_mode: int | None, optional: bool) -> dict[str, tuple[bytes, int]]:
    """relative path -> (content, mode) of a configMap/secret volume."""
    mode = DEFAULT_FILE_MODE if default_mode is None else default_mode
    out: dict[str, tuple[bytes, int]] = {}
    if items:
        for item in items:
            if item.key not in data:
                if optional:
                    continue
                raise VolumeError(volume, f'{kind} "{name}" references non-existent key: {item.key}')
            out[item.path] = (data[item.key], item.mode if item.mode is not None else mode)
    else:
        for key, value in data.items():
            out[key] = (value, mode)
    return out


def _safe_relative(volume: str, rel: str) -> str:
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise VolumeError(volume, f"invalid item path {rel!r}")
    return "/".join(parts)


class VolumeManager:
    """Sets up and removes the volumes of pods under `root_dir` (see module doc).

    `dry_run` (hollow nodes): compute the paths without touching the file system.
    """

    def __init__(self, root_dir: str, config: ConfigSource | None, dry_run: bool = False) -> None:
        self.root = Path(root_dir).absolute()
        self.config = config
        self.dry_run = dry_run

    def pod_dir(self, uid: str) -> Path:
        return self.root / "pods" / uid

    def pod_uids(self) -> list[str]:
        """Uids that have a pod directory on this node."""
        if self.dry_run:
            return []
        try:
            return [p.name for p in (self.root / "pods").iterdir() if p.is_dir()]
        except FileNotFoundError:
            return []

    def prepare(self, pod: Pod) -> dict[str, str]:
        """Set up every volume of `pod`; returns volume name -> host path. Raises VolumeError."""
        uid = pod.metadata.uid or ""
        paths: dict[str, str] = {}
        base = self.pod_dir(uid) / "volumes"
        for v in pod.spec.volumes or []:
            paths[v.name] = self._prepare_one(pod, v, base)
        return paths

    def _prepare_one(self, pod: Pod, v: Volume, base: Path) -> str:
        ns = pod.metadata.namespace or "default"
        if v.host_path is not None:
            path = Path(v.host_path.path)
            if not self.dry_run:
                self._host_path(v.name, path, v.host_path.type or "")
            return str(path)
        if v.config_map is not None or v.secret is not None:
            if v.config_map is not None:
                kind, name = CONFIGMAP, v.config_map.name or ""
                items, mode, optional = v.config_map.items, v.config_map.default_mode, bool(v.config_map.optional)
            else:
                assert v.secret is not None
                kind, name = SECRET, v.secret.secret_name or ""
                items, mode, optional = v.secret.items, v.secret.default_mode, bool(v.secret.optional)
            target = base / kind / v.name
            if self.dry_run:
                return str(target)
            data = self.config.get(kind, ns, name) if self.config is not None else None
            if data is None and not optional:
                raise VolumeError(v.name, f'{kind} "{name}" not found')
            files = _project(v.name, kind, name, data or {}, items, mode, optional)
            self._sync_dir(v.name, target, files)
            return str(target)
        # emptyDir, and every source this node does not implement, is a fresh directory
        target = base / "empty-dir" / v.name
        if not self.dry_run and not target.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            target.chmod(0o777)  # containers running as any user may write, as in Kubernetes
        return str(target)

    @staticmethod
    def _host_path(volume: str, path: Path, type_: str) -> None:
        if type_ == "DirectoryOrCreate":
            path.mkdir(parents=True, exist_ok=True)
        elif type_ == "FileOrCreate":
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch(mode=0o644)
        elif type_ == "Directory" and not path.is_dir():
            raise VolumeError(volume, f"hostPath type check failed: {path} is not a directory")
        elif type_ == "File" and not path.is_file():
            raise VolumeError(volume, f"hostPath type check failed: {path} is not a file")
        elif type_ == "Socket" and not (path.exists() and stat.S_ISSOCK(path.stat().st_mode)):
            raise VolumeError(volume, f"hostPath type check failed: {path} is not a socket file")
        elif type_ in ("CharDevice", "BlockDevice") and not path.exists():
            raise VolumeError(volume, f"hostPath type check failed: {path} does not exist")

    @staticmethod
    def _sync_dir(volume: str, target: Path, files: Mapping[str, tuple[bytes, int]]) -> None:
        target.mkdir(parents=True, exist_ok=True)
        target.chmod(0o755)
        wanted = {_safe_relative(volume, rel): content for rel, content in files.items()}
        for rel, (data, mode) in wanted.items():
            _write_atomic(target / rel, data, mode)
        for dirpath, _dirs, names in os.walk(target, topdown=False):
            for n in names:
                rel = os.path.relpath(os.path.join(dirpath, n), target)
                if rel not in wanted:
                    os.unlink(os.path.join(dirpath, n))
            if dirpath != str(target) and not os.listdir(dirpath):
                os.rmdir(dirpath)

    def cleanup(self, uid: str) -> None:
        """Remove the pod's directory (emptyDirs and projected files). Idempotent."""
        if self.dry_run or not uid:
            return
        shutil.rmtree(self.pod_dir(uid), ignore_errors=True)
