"""Message signing (issue 9, item 6): a Celery 5.7 producer with the `auth` serializer
(`app.setup_security()`) and fnhost with `security_*` in fnhost.yml. Signed tasks run and their
results come back signed by fnhost (the producer verifies them); unsigned, tampered, unknown
and expired signers go to the dead-letter queue, never run; the key and its password never
show. The signed producer runs in a process of its own (signed_producer.py): setup_security()
changes kombu's registry for the whole process."""

import base64
import datetime
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from test_observability import Capture

from helpers import RESULT_TIMEOUT, ack_bookkeeping_is_empty, clean_env, wait_until

PRODUCER = Path(__file__).resolve().parent / "signed_producer.py"
KEY_PASSWORD = "pw-Zq81-never-shown"
SEP = b"\x00\x01"


class Signer:
    """A throwaway RSA key and self-signed certificate: `id` is Celery's certificate id."""

    def __init__(self, directory: Path, name: str, serial: int, expired: bool = False, password: str | None = None):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fnhost interop"),
                             x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        not_after = now - datetime.timedelta(days=1) if expired else now + datetime.timedelta(days=30)
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                .serial_number(serial).not_valid_before(now - datetime.timedelta(days=60)).not_valid_after(not_after)
                .sign(key, hashes.SHA256()))
        encryption = serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
        self.key = directory / f"{name}.key"
        self.cert = directory / f"{name}.pem"
        self.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
        self.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.password = password
        self.id = f"fnhost interop {name} {serial}"


@pytest.fixture
def pki(tmp_path):
    """Signers and two stores: fnhost trusts the producer, itself and the expired signer;
    the producer trusts fnhost and itself (Celery refuses an expired certificate in a store)."""
    keys = tmp_path / "keys"
    keys.mkdir()
    signers = {
        "producer": Signer(keys, "producer", 1001),
        "fnhost": Signer(keys, "fnhost", 1002, password=KEY_PASSWORD),
        "stranger": Signer(keys, "stranger", 1003),
        "expired": Signer(keys, "expired", 1004, expired=True),
    }
    for store, names in {"fnhost-store": ("producer", "fnhost", "expired"), "producer-store": ("producer", "fnhost")}.items():
        (tmp_path / store).mkdir()
        for name in names:
            (tmp_path / store / f"{name}.pem").write_bytes(signers[name].cert.read_bytes())
    signers["fnhost_store"] = str(tmp_path / "fnhost-store" / "*.pem")
    signers["producer_store"] = str(tmp_path / "producer-store")
    return signers


def signing_config(tmp_path, pki, extra: str = "") -> Path:
    fnhost = pki["fnhost"]
    config = tmp_path / "fnhost.yml"
    config.write_text(f"security_key: {fnhost.key}\nsecurity_key_password: {KEY_PASSWORD}\n"
                      f"security_certificate: {fnhost.cert}\nsecurity_cert_store: '{pki['fnhost_store']}'\n"
                      f"security_digest: sha256\ntask_serializer: auth\n{extra}")
    return config


def produce(transport, pki, tasks, signer="producer", **options) -> list[dict]:
    """Sends `tasks` ([name, args] pairs) from a signed producer process; their results."""
    s = pki[signer]
    spec = {"broker": transport.broker_url, "backend": transport.backend_url, "key": str(s.key), "cert": str(s.cert),
            "store": pki["producer_store"], "tasks": tasks, "timeout": RESULT_TIMEOUT, **options}
    done = subprocess.run([sys.executable, str(PRODUCER), json.dumps(spec)], capture_output=True, text=True,
                          timeout=RESULT_TIMEOUT * 3, env=clean_env())
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


class DeadLetters:
    """The dead-letter queue of the test's broker, read without disturbing fnhost: the Redis
    list `fnhost.dlq`, or the RabbitMQ queue (drained; what was seen is kept)."""

    def __init__(self, transport, redis_dbs, app):
        self.transport, self.redis_dbs, self.app, self.seen = transport, redis_dbs, app, []

    def entries(self) -> list[dict]:
        if not self.transport.is_amqp:
            return [json.loads(raw) for raw in self.redis_dbs.broker.lrange("fnhost.dlq", 0, -1)]
        with self.app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=3)
            channel = conn.default_channel
            try:
                while (m := channel.basic_get("fnhost.dlq", no_ack=True)) is not None:
                    self.seen.append({"reason": m.headers["x-fnhost-reason"], "task_id": m.headers.get("id"),
                                      "content_type": m.properties.get("content_type")})
            except Exception:  # noqa: BLE001 - the queue does not exist until the first dead letter
                pass
        return self.seen

    def wait_for_one(self) -> dict:
        entries = wait_until(lambda: self.entries(), RESULT_TIMEOUT, "a dead letter")
        assert len(entries) == 1, entries
        return entries[0]


def stored_result(transport, redis_dbs, task_id):
    if transport.backend_url.startswith("redis://"):
        return redis_dbs.backend.get(f"celery-task-meta-{task_id}")
    return None


def assert_serves_on(transport, pki):
    assert produce(transport, pki, [["math.add", [20, 22]]])[0].get("result") == 42


@pytest.mark.all_brokers
def test_signed_tasks_run_and_their_signed_results_verify_in_the_producer(serve, make_functions, transport, redis_dbs, pki, tmp_path):
    host = serve(make_functions(), "-c", "2", "--config", signing_config(tmp_path, pki))
    assert "message signing: only signed messages run" in host.log
    add, div = produce(transport, pki, [["math.add", [2, 3]], ["math.div", [1, 0]]])
    assert add.get("result") == 5, add
    assert div.get("error") == "ZeroDivisionError", div
    # A chain: fnhost publishes the second step itself, signed with its key, and verifies it.
    (last,) = produce(transport, pki, [["math.add", [1, 2]], ["math.mul", [3]]], chain=True)
    assert last.get("result") == 9, last
    stored = stored_result(transport, redis_dbs, add["id"])
    if stored is not None:
        # Celery's auth serializer's document, signed by fnhost's certificate.
        fields = base64.b64decode(stored).split(SEP, 4)
        assert base64.b64decode(fields[0]).decode() == pki["fnhost"].id
        assert fields[2] == b"application/json" and json.loads(fields[4])["status"] == "SUCCESS"


def test_a_signed_chord_runs_its_body_once_with_every_part(serve, make_functions, transport, pki, tmp_path):
    host = serve(make_functions(), "-c", "2", "--config", signing_config(tmp_path, pki))
    header = [["math.add", [i, i]] for i in range(4)]
    (body,) = produce(transport, pki, [*header, ["math.xsum", []]], chord=True)
    assert body.get("result") == 12, body
    assert "refused to the dead-letter queue" not in host.log


@pytest.mark.all_brokers
def test_an_unsigned_message_is_refused_to_the_dead_letter_queue(serve, make_functions, transport, redis_dbs, celery_app, pki, tmp_path):
    host = serve(make_functions(), "-c", "2", "--config", signing_config(tmp_path, pki))
    unsigned = celery_app.send_task("math.add", args=[2, 3], queue="math.add")
    entry = DeadLetters(transport, redis_dbs, celery_app).wait_for_one()
    assert entry["reason"].startswith("SecurityError: unsigned message refused"), entry
    assert entry["task_id"] == unsigned.id
    assert stored_result(transport, redis_dbs, unsigned.id) is None  # nothing stored, nothing run
    assert f"math.add[{unsigned.id}] succeeded" not in host.log
    assert_serves_on(transport, pki)


@pytest.mark.all_brokers
def test_a_tampered_body_is_refused_as_a_bad_signature(serve, make_functions, transport, redis_dbs, celery_app, pki, tmp_path):
    serve(make_functions(), "-c", "2", "--config", signing_config(tmp_path, pki))
    (tampered,) = produce(transport, pki, [["math.add", [2, 3]]], tamper=True, wait=False)
    entry = DeadLetters(transport, redis_dbs, celery_app).wait_for_one()
    assert entry["reason"].startswith("SecurityError: Bad signature"), entry
    assert entry["task_id"] == tampered["id"]
    assert stored_result(transport, redis_dbs, tampered["id"]) is None
    assert_serves_on(transport, pki)


@pytest.mark.all_brokers
def test_a_signer_outside_the_store_is_refused_as_unknown(serve, make_functions, transport, redis_dbs, celery_app, pki, tmp_path):
    serve(make_functions(), "-c", "2", "--config", signing_config(tmp_path, pki))
    (stranger,) = produce(transport, pki, [["math.add", [2, 3]]], signer="stranger", wait=False)
    entry = DeadLetters(transport, redis_dbs, celery_app).wait_for_one()
    assert entry["reason"] == f"SecurityError: Unknown certificate: '{pki['stranger'].id}'", entry
    assert stored_result(transport, redis_dbs, stranger["id"]) is None
    assert_serves_on(transport, pki)


def test_an_expired_signer_certificate_is_refused(serve, make_functions, transport, redis_dbs, celery_app, pki, tmp_path):
    host = serve(make_functions(), "-c", "2", "--config", signing_config(tmp_path, pki))
    assert f"certificate '{pki['expired'].id}'" in host.log and "has expired" in host.log
    (expired,) = produce(transport, pki, [["math.add", [2, 3]]], signer="expired", wait=False)
    entry = DeadLetters(transport, redis_dbs, celery_app).wait_for_one()
    assert entry["reason"] == f"SecurityError: Expired certificate: '{pki['expired'].id}'", entry
    assert stored_result(transport, redis_dbs, expired["id"]) is None
    assert_serves_on(transport, pki)


def test_a_signed_message_without_signing_configured_is_refused_saying_what_to_set(serve, make_functions, transport, redis_dbs,
                                                                                   celery_app, pki):
    serve(make_functions(), "-c", "2")
    (signed,) = produce(transport, pki, [["math.add", [2, 3]]], wait=False)
    entry = DeadLetters(transport, redis_dbs, celery_app).wait_for_one()
    assert entry["reason"].startswith("ContentDisallowed: Refusing a signed message"), entry
    assert "security_key" in entry["reason"] and entry["task_id"] == signed["id"]
    assert celery_app.send_task("math.add", args=[1, 1], queue="math.add").get(timeout=RESULT_TIMEOUT) == 2


def test_a_stored_signed_success_is_never_overwritten(serve, make_functions, transport, redis_dbs, pki, tmp_path):
    host = serve(make_functions(), "-c", "2", "--config", signing_config(tmp_path, pki))
    (first,) = produce(transport, pki, [["math.add", [2, 3]]])
    assert first.get("result") == 5
    stored = redis_dbs.backend.get(f"celery-task-meta-{first['id']}")
    # The same id delivered again, now failing: the SUCCESS guard reads the signed document.
    produce(transport, pki, [["math.div", [1, 0], first["id"]]], wait=False)
    wait_until(lambda: redis_dbs.broker.llen("math.div") == 0, 10, "the second delivery to be fetched")
    wait_until(lambda: ack_bookkeeping_is_empty(redis_dbs.broker), 10, "the second delivery to be settled")
    host.wait_for_log(rf"math\.div\[{first['id']}\].*ZeroDivisionError", RESULT_TIMEOUT)  # it did run, and fail
    assert redis_dbs.backend.get(f"celery-task-meta-{first['id']}") == stored


@pytest.mark.all_brokers(["redis", "amqp+rpc"])
def test_remote_control_answers_signed_requests_only(serve, make_functions, transport, celery_app, pki, tmp_path):
    host = serve(make_functions(), "-c", "2", "--config", signing_config(tmp_path, pki))
    # An app with setup_security() sends signed pidbox requests and accepts only signed replies.
    (asked,) = produce(transport, pki, [], inspect=["ping"])
    assert list((asked["ping"] or {}).values()) == [{"ok": "pong"}], asked
    # Unsigned requests are refused, never run: not even shutdown.
    assert celery_app.control.inspect(timeout=2).ping() is None
    celery_app.control.broadcast("shutdown")
    host.wait_for_log("remote control: an unsigned request was refused")
    assert_serves_on(transport, pki)
    assert host.proc.poll() is None


def test_the_signing_key_and_its_password_never_show(serve, make_functions, transport, redis_dbs, celery_app, pki, tmp_path, fnhost_cli):
    secret_lines = [line for line in pki["fnhost"].key.read_text().splitlines() if not line.startswith("-----")]
    port = _free_port()
    host = serve(make_functions(), "-c", "2", "-E", "--metrics-port", port, "--config", signing_config(tmp_path, pki))
    capture = Capture(celery_app, transport, redis_dbs)  # events stay JSON: a plain app reads them
    (done,) = produce(transport, pki, [["math.add", [2, 3]]])
    assert done.get("result") == 5
    try:
        capture.wait_for(lambda e: e["type"] == "task-succeeded" and e.get("uuid") == done["id"], "task-succeeded")
    finally:
        capture.stop()
    (asked,) = produce(transport, pki, [], inspect=["conf"])
    conf = asked["conf"] or {}
    (reply,) = conf.values()
    assert reply["task_serializer"] == "auth" and reply["accept_content"] == ["auth"] and reply["result_serializer"] == "auth"
    assert reply["security_key"] == "********" and reply["security_key_password"] == "********"
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    for text in (host.log, json.dumps(conf), metrics, json.dumps(capture.events, default=str)):
        assert KEY_PASSWORD not in text
        assert not any(line in text for line in secret_lines)

    # A wrong password stops the host at start, and the error shows neither password nor key.
    wrong = tmp_path / "wrong.yml"
    wrong.write_text(signing_config(tmp_path, pki).read_text().replace(KEY_PASSWORD, "wrong-Hq55-password"))
    done = fnhost_cli("serve", "--functions", make_functions(), "--config", wrong, "--broker", transport.broker_url, timeout=30)
    assert done.returncode != 0
    assert "Invalid private key" in done.stderr and "security_key_password" in done.stderr, done.stderr
    for text in (done.stdout, done.stderr):
        assert "wrong-Hq55-password" not in text and KEY_PASSWORD not in text
        assert not any(line in text for line in secret_lines)


@pytest.mark.parametrize("settings, expected", [
    ("security_key: /nonexistent/k.pem\n", "needs security_key, security_certificate and security_cert_store"),
    ("task_serializer: pickle\n", "task_serializer: must be json or auth"),
    ("security_key: {key}\nsecurity_certificate: {cert}\nsecurity_cert_store: /nonexistent/*.pem\n",
     "no certificate matches /nonexistent/*.pem"),
])
def test_incomplete_or_wrong_signing_settings_stop_the_host_saying_why(make_functions, transport, pki, tmp_path, fnhost_cli,
                                                                      settings, expected):
    config = tmp_path / "fnhost.yml"
    config.write_text(settings.format(key=pki["producer"].key, cert=pki["producer"].cert))
    done = fnhost_cli("serve", "--functions", make_functions(), "--config", config, "--broker", transport.broker_url, timeout=30)
    assert done.returncode != 0 and expected in done.stderr, done.stderr


SIGNED_PYTHON_WORKER = '''
import os
from celery import Celery

app = Celery("pysigned", broker=os.environ["PYWORKER_BROKER"], backend=os.environ["PYWORKER_BACKEND"])
app.conf.update(security_key=os.environ["PYWORKER_KEY"], security_certificate=os.environ["PYWORKER_CERT"],
                security_cert_store=os.environ["PYWORKER_STORE"], security_digest="sha256",
                task_serializer="auth", result_serializer="auth", accept_content=["auth"],
                task_routes={name: {"queue": name} for name in ("math.xsum", "math.add", "math.mul")})
app.setup_security()


@app.task(name="py.add")
def add(a, b):
    return a + b
'''


@pytest.fixture
def signed_python_worker(tmp_path, transport, pki):
    """A real Celery 5.7 worker with setup_security() (the producer's key; it trusts the producer
    and fnhost), serving `py.add`. Its log is pysigned.log in the test's directory. Stopped by
    its PID."""
    import os
    import signal

    procs = []

    def start():
        (tmp_path / "pysigned.py").write_text(SIGNED_PYTHON_WORKER)
        env = clean_env({"PYTHONPATH": str(tmp_path), "PYWORKER_BROKER": transport.broker_url, "PYWORKER_BACKEND": transport.backend_url,
                         "PYWORKER_KEY": str(pki["producer"].key), "PYWORKER_CERT": str(pki["producer"].cert),
                         "PYWORKER_STORE": pki["producer_store"]})
        celery = os.path.join(os.path.dirname(sys.executable), "celery")
        procs.append(subprocess.Popen(
            [celery, "-A", "pysigned", "worker", "-Q", "py.add", "-c", "1", "-P", "solo", "-n", "pysigned@interop",
             "--without-mingle", "--without-gossip", "--without-heartbeat", "-l", "info"],
            cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / "pysigned.log", "wb")))

    yield start
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_signed_chain_crosses_from_fnhost_to_a_signing_python_worker_and_back(serve, make_functions, transport, pki, tmp_path,
                                                                                  signed_python_worker):
    # fnhost signs the py.add step it publishes; the Python worker verifies it with fnhost's
    # certificate, signs its result and the math.mul step with its own key; fnhost verifies that.
    serve(make_functions(), "-c", "2", "--config", signing_config(tmp_path, pki, 'task_routes:\n  "py.*": { queue: py.add }\n'))
    signed_python_worker()
    (last,) = produce(transport, pki, [["math.add", [1, 2]], ["py.add", [10]], ["math.mul", [2]]], chain=True, timeout=60)
    assert last.get("result") == (1 + 2 + 10) * 2, (last, (tmp_path / "pysigned.log").read_text()[-3000:])


def test_a_signed_chord_shared_with_a_signing_python_worker_is_joined_by_fnhost(serve, make_functions, transport, redis_dbs, pki,
                                                                                tmp_path, signed_python_worker):
    # The Python worker runs its parts first (their .j members signed with its key); fnhost runs
    # the rest, verifies every member when it wins the join, and publishes the body signed.
    header = [["math.add" if i % 2 == 0 else "py.add", [i, i]] for i in range(6)]
    (sent,) = produce(transport, pki, [*header, ["math.xsum", []]], chord=True, wait=False)
    python_parts = sent["parts"][1::2]
    signed_python_worker()
    wait_until(lambda: all(redis_dbs.backend.exists(f"celery-task-meta-{p}") for p in python_parts), 60,
               "the Python worker's parts to finish first")
    host = serve(make_functions(), "-c", "2", "--config", signing_config(tmp_path, pki))
    (body,) = produce(transport, pki, [], get=[sent["id"]], timeout=60)
    assert body.get("result") == sum(2 * i for i in range(6)), (body, host.log[-3000:])
    assert "refused to the dead-letter queue" not in host.log


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
