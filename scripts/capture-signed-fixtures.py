#!/usr/bin/env python3
"""Captures what a real Celery 5.7 producer with message signing (the `auth` serializer) puts on
the wire, as golden fixtures for the signed-payload tests (Tests/CeleryProtocolTests/Fixtures/
signed_* and Tests/FnHostSecurityTests/Fixtures/).

Run with the interop venv:  .venv/bin/python scripts/capture-signed-fixtures.py
It makes a throwaway RSA key and a self-signed certificate (a test key, valid until 2125),
starts a private redis-server on a free port (stopped by its PID), sends `math.add(2, 3)` with
`task_serializer='auth'` and `app.setup_security()` and no worker running, and pops the message
raw from the broker list, byte for byte as kombu wrote it. It then stores a SUCCESS result with
the producer's own backend (`result_serializer='auth'`) and captures that document too.
"""

import datetime
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis
from celery import Celery
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL = ROOT / "Tests" / "CeleryProtocolTests" / "Fixtures"
SECURITY = ROOT / "Tests" / "FnHostSecurityTests" / "Fixtures"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_signer(directory):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fnhost fixtures"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "fixture signer")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(4242).not_valid_before(datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc))
            .not_valid_after(datetime.datetime(2125, 1, 1, tzinfo=datetime.timezone.utc))
            .sign(key, hashes.SHA256()))
    (directory / "signer.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                               serialization.NoEncryption()))
    (directory / "signer.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    # The same key encrypted, for the security_key_password tests.
    (directory / "signer.encrypted.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"fixture-password")))


def main():
    SECURITY.mkdir(parents=True, exist_ok=True)
    make_signer(SECURITY)
    workdir = Path(tempfile.mkdtemp(prefix="fnhost-capture-"))
    port = free_port()
    proc = subprocess.Popen([shutil.which("redis-server"), "--bind", "127.0.0.1", "--port", str(port),
                             "--dir", str(workdir), "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        broker = redis.Redis(port=port, db=0)
        backend = redis.Redis(port=port, db=1)
        for _ in range(200):
            try:
                broker.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        app = Celery("capture", broker=f"redis://127.0.0.1:{port}/0", backend=f"redis://127.0.0.1:{port}/1",
                     set_as_current=False)
        app.conf.update(security_key=str(SECURITY / "signer.key"), security_certificate=str(SECURITY / "signer.pem"),
                        security_cert_store=str(SECURITY / "signer.pem"), security_digest="sha256",
                        task_serializer="auth", result_serializer="auth", accept_content=["auth"])
        app.setup_security()
        result = app.send_task("math.add", args=[2, 3], queue="math.add")
        raw = broker.rpop("math.add")
        (PROTOCOL / "signed_task_message.raw.json").write_bytes(raw)
        (SECURITY / "signed_task_message.raw.json").write_bytes(raw)
        app.backend.store_result(result.id, 5, "SUCCESS")
        (PROTOCOL / "signed_result_success.raw").write_bytes(backend.get(f"celery-task-meta-{result.id}"))
        print("captured", result.id)
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
