"""TLS to Redis (`rediss://`): fnhost and a real Celery 5.7 producer both talk to a redis-server
that listens on a TLS port only, with certificates made by openssl for the test.

Certificates are checked by default (the chain and the host name); a failed check is a clear
log line naming the CA setting, and a `rediss://` URL never falls back to plaintext.
"""

from __future__ import annotations

import itertools
import time

import pytest
from celery import Celery

from helpers import RESULT_TIMEOUT, queued_task_ids

_dbs = itertools.count(0)


@pytest.fixture
def tls_dbs(redis_tls_server):
    """A flushed broker/backend database pair on the TLS server."""
    k = next(_dbs) % 8
    broker, backend = redis_tls_server.client(2 * k), redis_tls_server.client(2 * k + 1)
    broker.flushdb()
    backend.flushdb()
    yield 2 * k, 2 * k + 1
    broker.close()
    backend.close()


def _producer(server, broker_db: int, backend_db: int) -> Celery:
    """A Celery producer on rediss:// in the URL query form Celery documents."""
    query = f"ssl_cert_reqs=required&ssl_ca_certs={server.certs['ca']}"
    return Celery("tls", broker=server.url(broker_db, query=query), backend=server.url(backend_db, query=query),
                  set_as_current=False)


def test_rediss_broker_and_backend_round_trip_tasks_results_and_inspect(serve, make_functions, redis_tls_server, tls_dbs, tmp_path):
    broker_db, backend_db = tls_dbs
    certs = redis_tls_server.certs
    # The broker in the URL query form, the backend with redis_backend_use_ssl (mutual TLS, Celery's ssl_ keys).
    config = tmp_path / "fnhost.yml"
    config.write_text(
        "redis_backend_use_ssl:\n"
        f"  ssl_cert_reqs: CERT_REQUIRED\n  ssl_ca_certs: {certs['ca']}\n"
        f"  ssl_certfile: {certs['client_cert']}\n  ssl_keyfile: {certs['client_key']}\n"
    )
    broker = redis_tls_server.url(broker_db, query=f"ssl_cert_reqs=required&ssl_ca_certs={certs['ca']}")
    host = serve(make_functions(), "-c", "2", "--config", config, "--broker", broker,
                 "--backend", redis_tls_server.url(backend_db), urls=False)
    assert "rediss://:***@localhost" in host.log and redis_tls_server.password not in host.log
    app = _producer(redis_tls_server, broker_db, backend_db)
    try:
        assert app.send_task("math.add", args=[2, 3], queue="math.add").get(timeout=RESULT_TIMEOUT) == 5
        with pytest.raises(ZeroDivisionError):
            app.send_task("math.div", args=[1, 0], queue="math.div").get(timeout=RESULT_TIMEOUT)
        # The idle path: the consumer is blocked in BRPOP over TLS when these arrive.
        time.sleep(2)
        results = [app.send_task("math.add", args=[i, i], queue="math.add") for i in range(20)]
        assert [r.get(timeout=RESULT_TIMEOUT) for r in results] == [2 * i for i in range(20)]
        # Remote control over TLS: the pidbox subscription (pub/sub read with SSL_pending in mind).
        replies = app.control.inspect(timeout=5).ping() or {}
        assert any(v == {"ok": "pong"} for v in replies.values()), replies
    finally:
        app.close()


def test_rediss_with_the_wrong_ca_fails_naming_the_ca_setting(serve, make_functions, redis_tls_server, tls_dbs):
    broker_db, backend_db = tls_dbs
    other = redis_tls_server.certs["otherca"]
    url = redis_tls_server.url(broker_db, query=f"ssl_ca_certs={other}")
    host = serve(make_functions(), "-c", "1", "--broker", url, "--backend", url, urls=False, ready=False)
    line = host.wait_for_log(r"TLS handshake").string
    assert "certificate verify failed" in line and "ssl_ca_certs" in line and str(other) in line, line
    assert redis_tls_server.password not in host.log


def test_rediss_checks_the_host_name(serve, make_functions, redis_tls_server, tls_dbs, tmp_path):
    broker_db, _ = tls_dbs
    config = tmp_path / "fnhost.yml"
    config.write_text(f"broker_use_ssl: {{ ca_certs: {redis_tls_server.certs['ca']}, server_hostname: other.example }}\n")
    url = redis_tls_server.url(broker_db)
    host = serve(make_functions(), "-c", "1", "--config", config, "--broker", url, "--backend", url, urls=False, ready=False)
    line = host.wait_for_log(r"TLS handshake").string
    assert "certificate verify failed" in line and "other.example" in line, line


def test_rediss_against_a_plaintext_port_never_falls_back(serve, make_functions, redis_dbs, celery_app, redis_server):
    # A task waits on a plaintext Redis; a host told rediss:// for that same port must not take it.
    result = celery_app.send_task("math.add", args=[1, 1], queue="math.add")
    url = f"rediss://127.0.0.1:{redis_server.port}/{redis_dbs.broker_url.rsplit('/', 1)[1]}"
    host = serve(make_functions(), "-c", "1", "--broker", url, "--backend", url, urls=False, ready=False)
    line = host.wait_for_log(r"TLS handshake").string
    assert "failed" in line, line
    time.sleep(1)
    assert queued_task_ids(redis_dbs.broker, "math.add") == [result.id]
    assert host.stderr.search(r"fnhost ready") is None
