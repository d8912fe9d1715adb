"""Canvas (chains, groups, chords, link, link_error) composed by a real Celery 5.7 producer and
run by fnhost on a private redis-server; `.get()` returns or raises what it would with Python
workers. Chain steps, callbacks and chord bodies carry no queue: fnhost routes them to the
function's own queue, as it routes every message it publishes."""

import json

import pytest
from celery import Celery, chain, chord, group
from celery.exceptions import ChordError

from helpers import RESULT_TIMEOUT, task_meta, wait_until

FUNCTIONS = ("math.add", "math.mul", "math.div", "math.xsum", "text.upper")


@pytest.fixture
def app(celery_app):
    # The producer routes the tasks it sends itself; fnhost routes what it publishes.
    celery_app.conf.task_routes = {name: {"queue": name} for name in FUNCTIONS}
    return celery_app


@pytest.fixture
def host(serve, make_functions):
    return serve(make_functions(), "-c", "2")


def sig(app, name, *args, immutable=False):
    return app.signature(name, args=args, immutable=immutable)


def test_chain_of_three_returns_the_last_result_and_links_parents(host, app, redis_dbs):
    result = chain(sig(app, "math.add", 1, 2), sig(app, "math.mul", 3), sig(app, "math.mul", 2)).apply_async()
    assert result.get(timeout=RESULT_TIMEOUT) == 18
    second, first = result.parent, result.parent.parent
    assert second.get(timeout=RESULT_TIMEOUT) == 9 and first.get(timeout=RESULT_TIMEOUT) == 3
    # parent_id/root_id bookkeeping, and children filled before SUCCESS was stored.
    last_meta, second_meta, first_meta = (task_meta(redis_dbs.backend, r.id) for r in (result, second, first))
    assert second_meta["parent_id"] == first.id and last_meta["parent_id"] == second.id
    assert first_meta["children"] == [[[second.id, None], None]]
    assert second_meta["children"] == [[[result.id, None], None]]
    assert [c.id for c in first.children] == [second.id]


def test_immutable_step_ignores_the_parent_result(host, app):
    result = chain(sig(app, "math.add", 1, 2), sig(app, "math.add", 5, 5, immutable=True)).apply_async()
    assert result.get(timeout=RESULT_TIMEOUT) == 10


def test_group_of_ten(host, app, redis_dbs):
    result = group(sig(app, "math.add", i, i) for i in range(10)).apply_async()
    assert result.get(timeout=RESULT_TIMEOUT) == [2 * i for i in range(10)]
    for child in result.results:
        assert task_meta(redis_dbs.backend, child.id)["group_id"] == result.id


def test_chord_of_ten_into_a_sum(host, app, redis_dbs):
    result = chord(sig(app, "math.add", i, i) for i in range(10))(sig(app, "math.xsum"))
    assert result.get(timeout=RESULT_TIMEOUT) == sum(2 * i for i in range(10))
    gid = task_meta(redis_dbs.backend, result.id)["group_id"]
    # Celery 5.7's cleanup: the counting keys are gone and the claim key says "done".
    assert redis_dbs.backend.get(f"celery-taskset-meta-{gid}.c") == b"done"
    for suffix in (".j", ".s", ".d", ".t"):
        assert not redis_dbs.backend.exists(f"celery-taskset-meta-{gid}{suffix}")


def test_chain_group_task_runs_the_upgraded_chord(host, app):
    # The producer sends add with chain [chord(group(mul(2), mul(3)), xsum)]: fnhost applies the chord.
    result = chain(sig(app, "math.add", 1, 1), group(sig(app, "math.mul", 2), sig(app, "math.mul", 3)), sig(app, "math.xsum")).apply_async()
    assert result.get(timeout=RESULT_TIMEOUT) == 2 * 2 + 2 * 3


def test_chain_group_at_the_end_returns_the_group(host, app):
    result = chain(sig(app, "math.add", 1, 1), group(sig(app, "math.mul", 2), sig(app, "math.mul", 3))).apply_async()
    assert result.get(timeout=RESULT_TIMEOUT) == [4, 6]


def test_chord_inside_a_chain_continues_into_the_next_step(host, app):
    result = chain(sig(app, "math.add", 1, 1),
                   chord([sig(app, "math.mul", 2), sig(app, "math.mul", 3)], sig(app, "math.xsum")),
                   sig(app, "math.mul", 10)).apply_async()
    assert result.get(timeout=RESULT_TIMEOUT) == (2 * 2 + 2 * 3) * 10


def test_group_of_chains(host, app):
    result = group(chain(sig(app, "math.add", 1, 1), sig(app, "math.mul", 5)), sig(app, "math.add", 2, 2)).apply_async()
    assert result.get(timeout=RESULT_TIMEOUT) == [10, 4]


def test_chord_with_a_chain_body(host, app):
    result = chord([sig(app, "math.add", 1, 1), sig(app, "math.add", 2, 2)])(chain(sig(app, "math.xsum"), sig(app, "math.mul", 10)))
    assert result.get(timeout=RESULT_TIMEOUT) == (2 + 4) * 10


def test_chord_whose_header_holds_a_chain(host, app):
    header = [chain(sig(app, "math.add", 1, 1), sig(app, "math.mul", 5)), sig(app, "math.add", 2, 2)]
    result = chord(header)(sig(app, "math.xsum"))
    assert result.get(timeout=RESULT_TIMEOUT) == 10 + 4


def test_failing_middle_step_fails_every_remaining_step(host, app, redis_dbs):
    result = chain(sig(app, "math.add", 1, 1), sig(app, "math.div", 0), sig(app, "math.add", 1), sig(app, "math.mul", 2)).apply_async()
    with pytest.raises(ZeroDivisionError):
        result.get(timeout=RESULT_TIMEOUT)
    third = result.parent
    assert third.state == "FAILURE" and task_meta(redis_dbs.backend, third.id)["result"]["exc_type"] == "ZeroDivisionError"
    assert result.parent.parent.state == "FAILURE"
    assert result.parent.parent.parent.get(timeout=RESULT_TIMEOUT) == 2


def test_failed_chord_part_fails_the_body_with_chord_error(host, app, redis_dbs):
    result = chord([sig(app, "math.add", 1, 1), sig(app, "math.div", 1, 0), sig(app, "math.add", 2, 2)])(sig(app, "math.xsum"))
    # get() raises the header's own error if it sees the failed part first (Celery checks the
    # parent while it waits), else the body's ChordError: both are what Python workers give.
    with pytest.raises((ChordError, ZeroDivisionError)):
        result.get(timeout=RESULT_TIMEOUT)
    failed_part = result.parent.results[1].id
    meta = wait_until(lambda: task_meta(redis_dbs.backend, result.id), RESULT_TIMEOUT, "the chord body's result")
    assert meta["status"] == "FAILURE"
    assert meta["result"]["exc_type"] == "ChordError" and meta["result"]["exc_module"] == "celery.exceptions"
    assert meta["result"]["exc_message"] == [f"Dependency {failed_part} raised ZeroDivisionError('division by zero')"]
    with pytest.raises(ChordError):
        app.AsyncResult(result.id).get(timeout=RESULT_TIMEOUT)


def test_a_chain_in_a_chord_header_failing_early_still_fails_the_chord(host, app, redis_dbs):
    # div fails, so mul (the chain's last step, the chord member) never runs: its part is counted
    # as failed by the failing step, and the body fails instead of waiting forever.
    header = [chain(sig(app, "math.div", 1, 0), sig(app, "math.mul", 2)), sig(app, "math.add", 1, 1)]
    result = chord(header)(sig(app, "math.xsum"))
    with pytest.raises((ChordError, ZeroDivisionError)):
        result.get(timeout=RESULT_TIMEOUT)
    meta = wait_until(lambda: task_meta(redis_dbs.backend, result.id), RESULT_TIMEOUT, "the chord body's result")
    assert meta["status"] == "FAILURE" and meta["result"]["exc_type"] == "ChordError"


def test_one_link_runs_with_the_result(host, app):
    result = sig(app, "math.add", 2, 2).apply_async(link=sig(app, "math.mul", 10))
    assert result.get(timeout=RESULT_TIMEOUT) == 4
    (callback,) = result.children
    assert callback.get(timeout=RESULT_TIMEOUT) == 40
    assert callback.parent is None or callback.parent.id == result.id


def test_several_links_run_as_a_group(host, app, redis_dbs):
    result = sig(app, "math.add", 2, 2).apply_async(link=[sig(app, "math.mul", 2), sig(app, "math.mul", 3)])
    assert result.get(timeout=RESULT_TIMEOUT) == 4
    (callbacks,) = result.children
    assert callbacks.get(timeout=RESULT_TIMEOUT) == [8, 12]
    metas = [task_meta(redis_dbs.backend, r.id) for r in callbacks.results]
    assert {m["group_id"] for m in metas} == {callbacks.id} and all(m["parent_id"] == result.id for m in metas)


def test_link_error_is_called_with_the_failed_task_id(host, app, redis_dbs):
    result = sig(app, "math.div", 1, 0).apply_async(link_error=sig(app, "text.upper"))

    with pytest.raises(ZeroDivisionError):
        result.get(timeout=RESULT_TIMEOUT)

    def errback_meta():
        for key in redis_dbs.backend.scan_iter("celery-task-meta-*"):
            meta = json.loads(redis_dbs.backend.get(key))
            if meta.get("result") == result.id.upper():
                return meta
        return None

    meta = wait_until(errback_meta, RESULT_TIMEOUT, "the link_error task text.upper(<failed id>)")
    assert meta["status"] == "SUCCESS" and meta["parent_id"] == result.id


def test_two_hosts_finishing_one_chord_apply_the_body_exactly_once(serve, make_functions, app, redis_dbs):
    functions = make_functions()
    hosts = [serve(functions, "-c", "2", "-n", f"host{i}@interop", "-l", "debug") for i in range(2)]
    n = 40
    # The body goes to a queue nobody consumes, so every message published for it stays there.
    result = chord(sig(app, "math.add", i, 1) for i in range(n))(sig(app, "math.xsum").set(queue="interop.bodies"))
    header = result.parent
    assert header.get(timeout=RESULT_TIMEOUT) == [i + 1 for i in range(n)]
    # The claim winner releases the chord ("done") after it published the body.
    wait_until(lambda: redis_dbs.backend.get(f"celery-taskset-meta-{header.id}.c") == b"done", RESULT_TIMEOUT,
               "the chord to be released")
    bodies = [json.loads(m) for m in redis_dbs.broker.lrange("interop.bodies", 0, -1)]
    assert [b["headers"]["id"] for b in bodies] == [result.id]
    # Both hosts ran header tasks: the finish was shared.
    for host in hosts:
        assert host.stderr.search(r"task math\.add\[.*\] succeeded"), host.describe()
    # The one body message, moved to its function's queue, sums every part.
    redis_dbs.broker.lmove("interop.bodies", "math.xsum", "RIGHT", "LEFT")
    assert result.get(timeout=RESULT_TIMEOUT) == sum(i + 1 for i in range(n))


def test_steps_of_tasks_the_host_does_not_serve_follow_task_routes_then_celery(serve, make_functions, app, redis_dbs, tmp_path):
    config = tmp_path / "fnhost.yml"
    config.write_text('task_routes:\n  "reports.*": { queue: reports }\n  audit.log: audit\n')
    serve(make_functions(), "--config", config)
    for step, queue in (("reports.build", "reports"), ("audit.log", "audit"), ("python.only", "celery")):
        result = chain(sig(app, "math.add", 1, 2), sig(app, step, "x")).apply_async()
        assert result.parent.get(timeout=RESULT_TIMEOUT) == 3
        raw = wait_until(lambda: redis_dbs.broker.lrange(queue, 0, -1), RESULT_TIMEOUT, f"the {step} step in {queue}")
        (envelope,) = [json.loads(m) for m in raw]
        assert envelope["headers"]["id"] == result.id and envelope["headers"]["parent_id"] == result.parent.id
        assert envelope["properties"]["delivery_info"] == {"exchange": "", "routing_key": queue}
        redis_dbs.broker.delete(queue)


def test_a_bad_task_routes_entry_is_refused_with_its_name(fnhost_cli, make_functions, tmp_path):
    config = tmp_path / "fnhost.yml"
    config.write_text("task_routes:\n  reports.build: [1, 2]\n")
    out = fnhost_cli("serve", "--functions", make_functions(), "--config", config, "--broker", "redis://127.0.0.1:1/0", timeout=30)
    assert out.returncode != 0
    assert "task_routes.reports.build" in out.stderr and "queue name" in out.stderr


PYTHON_WORKER = '''
import os
from celery import Celery

app = Celery("pyworker", broker=os.environ["PYWORKER_BROKER"], backend=os.environ["PYWORKER_BACKEND"])
app.conf.task_routes = {name: {"queue": name} for name in ("math.xsum", "math.add", "math.mul")}


@app.task(name="py.add")
def add(a, b):
    return a + b
'''


@pytest.fixture
def python_worker(tmp_path, redis_dbs):
    """Starts a real Celery 5.7 worker serving `py.add` on queue py.add, on the test's databases
    (python_worker(); its log is pyworker.log in the test's directory). Stopped by its PID."""
    import os
    import signal
    import subprocess
    import sys

    procs = []

    def start():
        (tmp_path / "pyworker.py").write_text(PYTHON_WORKER)
        env = dict(os.environ, PYTHONPATH=str(tmp_path), PYWORKER_BROKER=redis_dbs.broker_url, PYWORKER_BACKEND=redis_dbs.backend_url)
        celery = os.path.join(os.path.dirname(sys.executable), "celery")
        procs.append(subprocess.Popen(
            [celery, "-A", "pyworker", "worker", "-Q", "py.add", "-c", "1", "-P", "solo", "-n", "py@interop",
             "--without-mingle", "--without-gossip", "--without-heartbeat", "-l", "info"],
            cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / "pyworker.log", "wb")))
        return tmp_path / "pyworker.log"

    yield start
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("last", ["python", "fnhost"])
def test_a_chord_shared_with_a_python_worker_joins_on_celery_5_7_keys(last, serve, make_functions, app, python_worker, redis_dbs):
    # Header parts alternate between fnhost (math.add) and a real Celery worker (py.add), both
    # counting in the same .s/.j/.d keys. The side started second finishes the chord, so each
    # side's claim-and-apply is exercised: the body runs once, with every result in order.
    app.conf.task_routes = {**app.conf.task_routes, "py.add": {"queue": "py.add"}}
    n = 6
    header = [sig(app, "math.add" if i % 2 == 0 else "py.add", i, i) for i in range(n)]
    result = chord(header)(sig(app, "math.xsum"))
    parts = result.parent.results
    fnhost_parts, python_parts = parts[0::2], parts[1::2]
    first, first_parts, second = ((lambda: serve(make_functions(), "-c", "2")), fnhost_parts, python_worker) \
        if last == "python" else (python_worker, python_parts, (lambda: serve(make_functions(), "-c", "2")))
    first()
    wait_until(lambda: all(p.state == "SUCCESS" for p in first_parts), 60, f"the parts run before the {last} side starts")
    assert not redis_dbs.backend.exists(f"celery-taskset-meta-{result.parent.id}.c"), "the chord completed early"
    second()
    assert result.get(timeout=60) == sum(2 * i for i in range(n))
    gid = result.parent.id
    wait_until(lambda: redis_dbs.backend.get(f"celery-taskset-meta-{gid}.c") == b"done", RESULT_TIMEOUT, "the chord to be released")
    for suffix in (".j", ".s", ".d"):
        assert not redis_dbs.backend.exists(f"celery-taskset-meta-{gid}{suffix}")


def test_a_chain_crosses_from_fnhost_to_a_python_worker_and_back(serve, make_functions, app, python_worker, tmp_path):
    # fnhost routes the py.add step by task_routes from its config; the Python worker reads the
    # message fnhost built, runs it and continues the chain back to fnhost's math.mul.
    config = tmp_path / "fnhost.yml"
    config.write_text('task_routes:\n  "py.*": { queue: py.add }\n')
    serve(make_functions(), "--config", config)
    python_worker()
    result = chain(sig(app, "math.add", 1, 2), sig(app, "py.add", 10), sig(app, "math.mul", 2)).apply_async()
    assert result.get(timeout=60) == (1 + 2 + 10) * 2
    assert result.parent.get(timeout=RESULT_TIMEOUT) == 13
    assert result.parent.parent.get(timeout=RESULT_TIMEOUT) == 3


@pytest.mark.all_brokers
def test_chains_and_failing_steps_on_every_broker_and_backend(host, app):
    result = chain(sig(app, "math.add", 1, 2), sig(app, "math.mul", 3), sig(app, "math.mul", 2)).apply_async()
    assert result.get(timeout=RESULT_TIMEOUT) == 18
    failing = chain(sig(app, "math.add", 1, 1), sig(app, "math.div", 0), sig(app, "math.add", 1)).apply_async()
    # With rpc:// the last step's FAILURE reaches the client through its frozen reply_to.
    with pytest.raises(ZeroDivisionError):
        failing.get(timeout=RESULT_TIMEOUT)


@pytest.mark.all_brokers(["amqp+redis"])
def test_chord_on_rabbitmq_with_the_redis_backend(host, app):
    result = chord(sig(app, "math.add", i, i) for i in range(10))(sig(app, "math.xsum"))
    assert result.get(timeout=RESULT_TIMEOUT) == 90


@pytest.mark.all_brokers(["amqp+rpc"])
def test_rpc_backend_refuses_a_chord_step_clearly(host, app, transport, redis_dbs):
    steps = lambda a: chain(sig(a, "math.add", 1, 1), group(sig(a, "math.mul", 2), sig(a, "math.mul", 3)), sig(a, "math.xsum"))
    # A producer on rpc:// refuses the chord itself, before sending anything (Celery's rule).
    with pytest.raises(NotImplementedError, match="does not support chords"):
        steps(app).apply_async()
    # A producer on another backend can send it to a host on rpc://: the host cannot count the
    # chord's parts, so the step that would apply it fails, naming the reason.
    other = Celery("other", broker=transport.broker_url, backend=redis_dbs.backend_url, set_as_current=False)
    other.conf.task_routes = app.conf.task_routes
    try:
        result = steps(other).apply_async()
        match = host.wait_for_log(r"canvas cannot continue, so it fails: NotImplementedError: .*chords")
        assert result.parent.parent.id in match.string  # the first step, whose next step is the chord
    finally:
        other.close()
