"""Results of the example plugins (libmath.so in C, libtext.so in Swift) read by a Python producer."""

import pytest

from helpers import RESULT_TIMEOUT

# Broker-independent: runs on Redis and on RabbitMQ (rpc:// and Redis result backends).
pytestmark = pytest.mark.all_brokers


@pytest.fixture
def host(serve, make_functions):
    return serve(make_functions(), "-c", "2")


def call(app, name, *args, **kwargs):
    return app.send_task(name, args=list(args), queue=name, **kwargs).get(timeout=RESULT_TIMEOUT)


def test_c_register_task_add_returns_int_sum(host, celery_app):
    result = call(celery_app, "math.add", 2, 3)
    assert result == 5 and type(result) is int


def test_c_register_task_add_of_a_float_returns_a_float(host, celery_app):
    assert call(celery_app, "math.add", 1.5, 2) == pytest.approx(3.5)


def test_c_native_mul_i64_returns_product(host, celery_app):
    assert call(celery_app, "math.mul", 6, -7) == -42


def test_c_native_mul_keeps_64_bit_range(host, celery_app):
    assert call(celery_app, "math.mul", 2**31, 2**31 - 1) == 2**31 * (2**31 - 1)


def test_c_div_returns_float_quotient(host, celery_app):
    result = call(celery_app, "math.div", 4, 2)
    assert result == 2.0 and type(result) is float
    assert call(celery_app, "math.div", 7, 2) == 3.5


def test_c_slow_reports_its_worker_pid_and_times(host, celery_app):
    result = call(celery_app, "math.slow", 0.1)
    assert set(result) == {"pid", "start", "end"}
    assert type(result["pid"]) is int and result["pid"] != host.pid
    assert result["start"] <= result["end"]


def test_swift_register_task_upper(host, celery_app):
    assert call(celery_app, "text.upper", "hello, world") == "HELLO, WORLD"


def test_swift_wordcount_returns_int(host, celery_app):
    result = call(celery_app, "text.wordcount", "the quick  brown\tfox")
    assert result == 4 and type(result) is int
    assert call(celery_app, "text.wordcount", "") == 0


def test_swift_require_nonempty_accepts_text(host, celery_app):
    r = celery_app.send_task("text.require_nonempty", args=["x"], queue="text.require_nonempty")
    r.get(timeout=RESULT_TIMEOUT)
    assert r.state == "SUCCESS"


def test_swift_echo_context_sees_task_id_name_and_retries(host, celery_app):
    r = celery_app.send_task("text.echo_context", queue="text.echo_context")
    assert r.get(timeout=RESULT_TIMEOUT) == {"task_id": r.id, "task_name": "text.echo_context", "retries": 0}


def test_caller_chosen_task_id_is_the_result_id(host, celery_app):
    r = celery_app.send_task("math.add", args=[1, 1], queue="math.add", task_id="my-own-id-42")
    assert r.id == "my-own-id-42"
    assert r.get(timeout=RESULT_TIMEOUT) == 2


def test_non_ascii_argument_round_trips_through_swift_upper(host, celery_app):
    s = "héllo wörld ñ ça 日本語 ünïcödé 😀 ∑"
    assert call(celery_app, "text.upper", s) == s.upper()


def test_one_megabyte_argument_round_trips_through_swift_upper(host, celery_app):
    s = ("abcdefghij" * 100_000) + "é" + ("klmnopqrst" * 1_000)
    assert len(s.encode()) > 1_000_000
    assert call(celery_app, "text.upper", s) == s.upper()


def test_hundred_tasks_in_flight_each_get_their_own_result(host, celery_app):
    sent = [(i, celery_app.send_task("math.add", args=[i, 1000], queue="math.add")) for i in range(100)]
    assert [r.get(timeout=RESULT_TIMEOUT) for _, r in sent] == [i + 1000 for i, _ in sent]


def test_two_slow_tasks_with_concurrency_two_run_in_parallel_processes(host, celery_app):
    first = celery_app.send_task("math.slow", args=[1.5], queue="math.slow")
    second = celery_app.send_task("math.slow", args=[1.5], queue="math.slow")
    a, b = first.get(timeout=RESULT_TIMEOUT), second.get(timeout=RESULT_TIMEOUT)
    assert a["pid"] != b["pid"], (a, b)
    assert max(a["start"], b["start"]) < min(a["end"], b["end"]), f"did not overlap: {a} {b}"
