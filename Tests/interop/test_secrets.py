"""Secrets never leave fnhost: a host on a password-protected TLS Redis (`requirepass`), with a
client key for mutual TLS, is driven through every output it has (text and JSON logs at debug,
/metrics, Celery events, `inspect conf|stats|report`, its error messages on a wrong password
and an unreachable server, and the CLI), and every output is searched for every secret.

To cover a new kind of secret (a signing key, ...), put it in the host's settings below and add
its text to `secrets()`.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import urllib.request
from pathlib import Path

import pytest
from celery import Celery

from helpers import RESULT_TIMEOUT

NODE = "secrets@interop"
WRONG_PASSWORD = "wr0ng-Pa55word-also-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def secrets(server) -> list[str]:
    """Every secret string the outputs must not hold: the Redis passwords (right and wrong) and
    the private key's contents (each line of its PEM body)."""
    key_lines = [line for line in Path(server.certs["client_key"]).read_text().splitlines() if line and not line.startswith("-----")]
    return [server.password, WRONG_PASSWORD, *key_lines]


def assert_command_line_masked(host, url: str, passwords: list[str]):
    """`ps` shows the host's --broker URL with its password overwritten by `*`, same length."""
    cmdline = Path(f"/proc/{host.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    masked = url
    for password in passwords:
        masked = masked.replace(password, "*" * len(password))
    assert masked in cmdline, cmdline
    assert_no_secret("the command line (ps)", cmdline, None, passwords)


def assert_no_secret(what: str, text: str, server, secrets_list: list[str] | None = None):
    leaked = [s for s in (secrets_list or secrets(server)) if s in text]
    assert not leaked, f"{what} holds a secret ({leaked[0][:8]}...):\n{text[:4000]}"


class PubSubCapture:
    """Every pub/sub message published on the server while it runs (events, pidbox replies)."""

    def __init__(self, client):
        self.client = client  # a collected client closes its pool, and the subscription with it
        self.pubsub = client.pubsub()
        self.pubsub.psubscribe("*")
        self.messages: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        try:
            while not self._stop.is_set():
                m = self.pubsub.get_message(timeout=0.2)
                if m and m["type"] == "pmessage":
                    self.messages.append(f"{m['channel']!r} {m['data']!r} {self._body(m['data'])}")
        except Exception as e:  # reported by stop()
            self.error = e

    error: Exception | None = None

    @staticmethod
    def _body(data: bytes) -> str:
        """kombu's envelope carries the event or reply base64-encoded: search it decoded too."""
        try:
            envelope = json.loads(data)
            return base64.b64decode(envelope["body"]).decode("utf-8", "replace")
        except (ValueError, KeyError, TypeError):
            return ""

    def stop(self) -> str:
        self._stop.set()
        self._thread.join(5)
        self.pubsub.close()
        assert self.error is None, f"the pub/sub capture failed: {self.error!r}"
        return "\n".join(self.messages)


@pytest.fixture
def secret_setup(redis_tls_server, tmp_path):
    """A config file holding every secret (the password in the URLs, the client key), and a producer."""
    server = redis_tls_server
    for db in (14, 15):
        server.client(db).flushdb()
    certs = server.certs
    tls = (f"{{ ssl_cert_reqs: required, ssl_ca_certs: {certs['ca']}, ssl_certfile: {certs['client_cert']}, "
           f"ssl_keyfile: {certs['client_key']} }}")
    config = tmp_path / "fnhost.yml"
    config.write_text(f"broker_url: {server.url(14)}\nresult_backend: {server.url(15)}\n"
                      f"broker_use_ssl: {tls}\nredis_backend_use_ssl: {tls}\n")
    query = f"ssl_cert_reqs=required&ssl_ca_certs={certs['ca']}"
    app = Celery("secrets", broker=server.url(14, query=query), backend=server.url(15, query=query), set_as_current=False)
    yield config, app
    app.close()


def test_no_output_holds_a_secret(serve, make_functions, fnhost_cli, redis_tls_server, secret_setup):
    server = redis_tls_server
    config, app = secret_setup
    functions = make_functions()
    capture = PubSubCapture(server.client(0))
    try:
        port = _free_port()
        host = serve(functions, "--config", config, "-n", NODE, "-c", "1", "-E", "-l", "debug", "--metrics-port", port,
                     "--heartbeat-interval", "0.5", urls=False)
        assert app.send_task("math.add", args=[2, 3], queue="math.add").get(timeout=RESULT_TIMEOUT) == 5
        with pytest.raises(ZeroDivisionError):
            app.send_task("math.div", args=[1, 0], queue="math.div").get(timeout=RESULT_TIMEOUT)
        unknown = app.send_task("no.such.task", queue="math.add")
        with pytest.raises(Exception):
            unknown.get(timeout=RESULT_TIMEOUT)

        inspect = app.control.inspect(timeout=5, destination=[NODE])
        replies = {name: getattr(inspect, name)() for name in ("conf", "stats", "report", "registered", "active_queues")}
        assert replies["conf"][NODE]["broker_url"].startswith("rediss://:***@"), replies["conf"]
        assert "broker_url" in replies["report"][NODE]["ok"], replies["report"]
        assert replies["stats"][NODE]["broker"]["ssl"] is True
        assert_no_secret("inspect replies", json.dumps(replies), server)

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=15) as r:
            assert_no_secret("/metrics", r.read().decode(), server)
        assert host.terminate() == 0
        assert_no_secret("the text log (debug)", host.log, server)
    finally:
        events = capture.stop()
    assert "task-succeeded" in events and "worker-online" in events
    assert_no_secret("events and pidbox replies", events, server)

    # JSON logs at debug.
    json_host = serve(functions, "--config", config, "-c", "1", "-l", "debug", "--log-format", "json", urls=False)
    assert app.send_task("math.add", args=[1, 1], queue="math.add").get(timeout=RESULT_TIMEOUT) == 2
    assert json_host.terminate() == 0
    assert_no_secret("the JSON log (debug)", json_host.log, server)

    # Failure paths: a wrong password, an unreachable server, a malformed URL.
    wrong = serve(functions, "--config", config, "-c", "1", "-l", "debug", "--broker", server.url(14, password=WRONG_PASSWORD),
                  urls=False, ready=False)
    wrong.wait_for_log(r"WRONGPASS|invalid password|refused the connection setup")
    assert_command_line_masked(wrong, server.url(14, password=WRONG_PASSWORD), [WRONG_PASSWORD])
    wrong.stop()
    assert_no_secret("the log on a wrong password", wrong.log, server)
    unreachable = serve(functions, "--config", config, "-c", "1", "-l", "debug",
                        "--broker", f"rediss://:{server.password}@127.0.0.1:{_free_port()}/0", urls=False, ready=False)
    unreachable.wait_for_log(r"cannot reach the broker")
    assert_command_line_masked(unreachable, f"rediss://:{server.password}@127.0.0.1:", [server.password])
    unreachable.stop()
    assert_no_secret("the log on an unreachable server", unreachable.log, server)
    malformed = fnhost_cli("serve", "--functions", functions, "--broker", f"rediss://:{server.password}@localhost:notaport/0")
    assert malformed.returncode != 0
    assert_no_secret("the error on a malformed URL", malformed.stdout + malformed.stderr, server)

    # The CLI.
    for args in (("list", "--functions", functions, "--config", config, "-l", "debug", "--options"),
                 ("routes", "--functions", functions, "--config", config),
                 ("dlq", "list", "--config", config),
                 ("dlq", "list", "--config", config, "--broker", server.url(14, password=WRONG_PASSWORD)),
                 ("dlq", "list", "--broker", f"rediss://:{server.password}@127.0.0.1:{_free_port()}/0")):
        out = fnhost_cli(*args)
        assert_no_secret(f"fnhost {' '.join(map(str, args))}", out.stdout + out.stderr, server)


AMQP_PASSWORD = "amqp-s3cret-Pa55word"


def test_no_output_holds_an_amqp_password(serve, make_functions, fnhost_cli, rabbitmq_server):
    rabbit = rabbitmq_server
    vhost = rabbit.new_vhost()
    rabbit.ctl("add_user", "fnsecret", AMQP_PASSWORD)
    rabbit.ctl("set_permissions", "-p", vhost, "fnsecret", ".*", ".*", ".*")
    hidden = [AMQP_PASSWORD, WRONG_PASSWORD]
    url = rabbit.url(vhost).replace("guest:guest@", f"fnsecret:{AMQP_PASSWORD}@")
    functions = make_functions()
    host = serve(functions, "-n", NODE, "-c", "1", "-E", "-l", "debug", urls=False,
                 env={"CELERY_BROKER_URL": url, "CELERY_RESULT_BACKEND": "rpc://"})
    app = Celery("secrets-amqp", broker=url, backend="rpc://", set_as_current=False)
    try:
        assert app.send_task("math.add", args=[2, 3], queue="math.add").get(timeout=RESULT_TIMEOUT) == 5
        with pytest.raises(ZeroDivisionError):
            app.send_task("math.div", args=[1, 0], queue="math.div").get(timeout=RESULT_TIMEOUT)
        inspect = app.control.inspect(timeout=5, destination=[NODE])
        replies = {name: getattr(inspect, name)() for name in ("conf", "stats", "report")}
        assert replies["conf"][NODE]["broker_url"].startswith("amqp://fnsecret:***@"), replies["conf"]
        assert_no_secret("inspect replies (AMQP)", json.dumps(replies), None, hidden)
    finally:
        app.close()
    assert host.terminate() == 0
    assert_no_secret("the log (AMQP, debug)", host.log, None, hidden)

    wrong_url = url.replace(AMQP_PASSWORD, WRONG_PASSWORD)
    wrong = serve(functions, "-c", "1", "-l", "debug", "--broker", wrong_url, "--backend", "rpc://", urls=False, ready=False)
    wrong.wait_for_log(r"cannot reach the broker|ACCESS_REFUSED|refused")
    assert_command_line_masked(wrong, wrong_url, [WRONG_PASSWORD])
    wrong.stop()
    assert_no_secret("the log on a wrong AMQP password", wrong.log, None, hidden)
    for broker in (wrong_url, f"amqp://fnsecret:{AMQP_PASSWORD}@127.0.0.1:{_free_port()}/{vhost}"):
        out = fnhost_cli("dlq", "list", "--broker", broker)
        assert out.returncode != 0
        assert_no_secret("fnhost dlq list (AMQP)", out.stdout + out.stderr, None, hidden)
