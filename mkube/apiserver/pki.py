"""The cluster's certificates: one CA and the API server's serving certificate.

    <data-dir>/tls/ca.crt          CA certificate (EC P-256, 10 years); what clients trust
    <data-dir>/tls/ca.key          its key (0600)
    <data-dir>/tls/apiserver.crt   serving certificate signed by the CA (1 year)
    <data-dir>/tls/apiserver.key   its key (0600)

`ensure(tls_dir, sans)` makes what is missing and reuses what is there. The CA is never
replaced (every agent and kubeconfig pins it); the serving certificate is made again
when its SANs differ from the wanted ones, when it is no longer signed by the CA, or
when it expires within 90 days (k3s renews the same way, at start).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import socket
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_VALIDITY = datetime.timedelta(days=3650)
SERVING_VALIDITY = datetime.timedelta(days=365)
RENEW_BEFORE = datetime.timedelta(days=90)
CLOCK_SKEW = datetime.timedelta(hours=1)
# The names pods use for the API server (the `kubernetes` Service) and loopback.
DEFAULT_DNS_NAMES = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                     "kubernetes.default.svc.cluster.local")
_WILDCARDS = ("", "0.0.0.0", "::")


@dataclass(frozen=True)
class TlsFiles:
    """Where the certificates are; `ca_pem` is the CA file's exact bytes (what /cacerts serves)."""

    ca_cert: Path
    ca_key: Path
    cert: Path
    key: Path
    ca_pem: bytes


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def write_private(path: Path, data: bytes) -> None:
    """Write `path` atomically, created 0600 (never briefly readable by others)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mkstemp creates 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_ca(common_name: str = "mkube-ca") -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{common_name}@{int(_now().timestamp())}")])
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW).not_valid_after(now + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def _san_entries(sans: Iterable[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for san in sans:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(san)))
        except ValueError:
            out.append(x509.DNSName(san))
    return out


def make_serving_cert(ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, sans: Iterable[str],
                      common_name: str = "kube-apiserver") -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A TLS server certificate for `sans` (IP addresses and DNS names) signed by the CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW).not_valid_after(now + SERVING_VALIDITY)
            .add_extension(x509.SubjectAlternativeName(_san_entries(sans)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert, key


def cert_sans(cert: x509.Certificate) -> set[str]:
    """The SANs of `cert` as strings (IPs normalised)."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(v) for v in ext.get_values_for_type(x509.IPAddress)} | set(ext.get_values_for_type(x509.DNSName))


_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def san_error(value: str) -> str | None:
    """Why `value` cannot be a SAN (None if it is an IP address or a DNS name, `*.` allowed)."""
    try:
        ipaddress.ip_address(value)
        return None
    except ValueError:
        pass
    name = value.lower().rstrip(".")
    labels = name[2:].split(".") if name.startswith("*.") else name.split(".")
    if not name or len(name) > 253 or not all(_DNS_LABEL.match(label) for label in labels):
        return f"{value!r} is neither an IP address nor a DNS name (letters, digits, '-' and '.')"
    return None


def normalise_sans(sans: Iterable[str]) -> list[str]:
    """Unique SANs, IPs in canonical form, DNS names lower-case; wildcard binds dropped."""
    out: dict[str, None] = {}
    for raw in sans:
        san = raw.strip()
        if san in _WILDCARDS:
            continue
        try:
            out[str(ipaddress.ip_address(san))] = None
        except ValueError:
            out[san.lower().rstrip(".")] = None
    return list(out)


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
        return True
    except (ValueError, TypeError, InvalidSignature):
        return False


def _load_ca(tls_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    cert_path, key_path = tls_dir / "ca.crt", tls_dir / "ca.key"
    if not cert_path.exists() and not key_path.exists():
        return None
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError) as e:
        raise RuntimeError(f"{tls_dir}: the cluster CA (ca.crt/ca.key) is unreadable ({e}); it is not replaced "
                           f"automatically because every node and kubeconfig trusts it") from e
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise RuntimeError(f"{key_path}: expected an EC private key")
    return cert, key


def ensure(tls_dir: Path, sans: Iterable[str]) -> TlsFiles:
    """Make the CA and serving certificate in `tls_dir` if missing or stale (see module doc)."""
    tls_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(tls_dir, 0o700)
    wanted = set(normalise_sans(sans))
    loaded = _load_ca(tls_dir)
    if loaded is None:
        ca_cert, ca_key = make_ca()
        write_private(tls_dir / "ca.key", _key_pem(ca_key))
        write_private(tls_dir / "ca.crt", _cert_pem(ca_cert))
    else:
        ca_cert, ca_key = loaded
    cert_path, key_path = tls_dir / "apiserver.crt", tls_dir / "apiserver.key"
    if _serving_stale(cert_path, key_path, ca_cert, wanted):
        cert, key = make_serving_cert(ca_cert, ca_key, sorted(wanted))
        write_private(key_path, _key_pem(key))
        write_private(cert_path, _cert_pem(cert))
    for private in (tls_dir / "ca.key", key_path):
        os.chmod(private, 0o600)
    return TlsFiles(ca_cert=tls_dir / "ca.crt", ca_key=tls_dir / "ca.key", cert=cert_path, key=key_path,
                    ca_pem=(tls_dir / "ca.crt").read_bytes())


def _serving_stale(cert_path: Path, key_path: Path, ca_cert: x509.Certificate, wanted: set[str]) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError):
        return True
    if key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) \
            != cert.public_key().public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo):
        return True
    return (cert_sans(cert) != wanted or not _signed_by(cert, ca_cert)
            or cert.not_valid_after_utc - _now() < RENEW_BEFORE)


# ---------------------------------------------------------------- which SANs

def local_ips() -> list[str]:
    """Every address of this machine's interfaces (IPv4 from /proc/net/fib_trie, IPv6 from
    /proc/net/if_inet6, link-local excluded), plus the hostname's and the default
    route's; best effort, never raises."""
    found: dict[str, None] = {}
    try:
        lines = Path("/proc/net/fib_trie").read_text().splitlines()
        for prev, line in zip(lines, lines[1:], strict=False):
            if "/32 host LOCAL" in line:
                found[prev.strip().split()[-1]] = None
    except OSError:
        pass
    try:
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            raw = line.split()[0]
            addr = ipaddress.IPv6Address(int(raw, 16))
            if not addr.is_link_local:
                found[str(addr)] = None
    except (OSError, ValueError, IndexError):
        pass
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            found[str(info[4][0])] = None
    except OSError:
        pass
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the route's source
            found[s.getsockname()[0]] = None
    except OSError:
        pass
    out = []
    for ip in found:
        try:
            out.append(str(ipaddress.ip_address(ip)))
        except ValueError:
            continue
    return out


def first_service_ip(cidr: str) -> str | None:
    """The first host address of the Service CIDR: the `kubernetes` Service's ClusterIP."""
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None
    return str(net.network_address + 1) if net.num_addresses > 2 else None


def default_sans(bind_address: str, service_cluster_ip_range: str, extra: Iterable[str] = (),
                 advertise_address: str | None = None) -> list[str]:
    """What the serving certificate names: loopback, the hostname, the `kubernetes`
    Service's DNS names and ClusterIP, the bind/advertise address, every local
    interface address, and `extra` (--tls-san, node IPs)."""
    sans: list[str] = ["127.0.0.1", "::1", *DEFAULT_DNS_NAMES, socket.gethostname()]
    service_ip = first_service_ip(service_cluster_ip_range)
    if service_ip:
        sans.append(service_ip)
    sans += [bind_address, *( [advertise_address] if advertise_address else [] ), *local_ips(), *extra]
    return normalise_sans(sans)
