"""Client TLS settings against a loopback HTTPS server with a self-signed CA."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mkube.api.types import Pod
from mkube.client import Client, ConnectionFailed
from mkube.client.kubeconfig import write_kubeconfig


def _cert(tmp: Path, name: str) -> tuple[bytes, Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_path, key_path = tmp / f"{name}.crt", tmp / f"{name}.key"
    cert_path.write_bytes(pem)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return pem, cert_path, key_path


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server API
        body = json.dumps({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p"},
                           "auth": self.headers.get("Authorization")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[tuple[str, bytes, Path]]:
    pem, cert, key = _cert(tmp_path, "server")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}", pem, cert
    httpd.shutdown()
    httpd.server_close()


def test_ca_data_ca_file_and_kubeconfig(https_server: tuple[str, bytes, Path], tmp_path: Path) -> None:
    url, pem, cert_path = https_server
    with Client(url, token="tk", ca_data=pem) as c:
        assert c.get_raw(Pod, "p")["auth"] == "Bearer tk"
    with Client(url, ca_file=str(cert_path)) as c:
        assert c.get(Pod, "p").metadata.name == "p"
    kc = write_kubeconfig(tmp_path / "kc", url, token="from-file", ca_data=pem)
    with Client.from_kubeconfig(kc) as c:
        assert c.get_raw(Pod, "p")["auth"] == "Bearer from-file"


def test_untrusted_certificate_fails_clearly_unless_insecure(https_server: tuple[str, bytes, Path],
                                                               tmp_path: Path) -> None:
    url, _, _ = https_server
    other_pem, _, _ = _cert(tmp_path, "other")
    with Client(url, ca_data=other_pem, timeout=5) as c, pytest.raises(ConnectionFailed) as exc:
        c.get(Pod, "p")
    assert url in str(exc.value) and "CERTIFICATE_VERIFY_FAILED" in str(exc.value)
    with Client(url, insecure_skip_verify=True) as c:
        assert c.get(Pod, "p").metadata.name == "p"
