"""Long ETAs go to a durable delayed store on Redis and are acknowledged, instead of being held
unacknowledged: a visibility timeout shorter than the countdown no longer runs the task more
than once (Celery's worker runs it again at every restore, celery-protocol.md section 9.1)."""

from helpers import RESULT_TIMEOUT, ack_bookkeeping_is_empty, wait_until


def test_a_countdown_longer_than_the_visibility_timeout_runs_exactly_once(serve, make_functions, celery_app, redis_dbs, tmp_path):
    config = tmp_path / "fnhost.yml"
    config.write_text("broker_transport_options: {visibility_timeout: 1}\n")
    host = serve(make_functions(), "-c", "2", "--config", config, "-l", "debug")
    result = celery_app.send_task("math.add", args=[20, 22], queue="math.add", countdown=8)
    wait_until(lambda: redis_dbs.broker.zcard("fnhost.delayed") == 1, 10, "the task to reach the delayed store")
    # While it waits it is acknowledged: nothing a visibility sweep could restore.
    assert ack_bookkeeping_is_empty(redis_dbs.broker)
    assert result.get(timeout=RESULT_TIMEOUT + 10) == 42
    assert host.log.count(f"math.add[{result.id}] succeeded") == 1, host.log
    assert f"math.add[{result.id}] started" in host.log
    assert redis_dbs.broker.zcard("fnhost.delayed") == 0
    assert "restored" not in host.log


def test_a_delayed_task_survives_a_host_restart(serve, make_functions, celery_app, redis_dbs):
    functions = make_functions()
    first = serve(functions, "-c", "1")
    result = celery_app.send_task("math.mul", args=[6, 7], queue="math.mul", countdown=7)
    wait_until(lambda: redis_dbs.broker.zcard("fnhost.delayed") == 1, 10, "the task to reach the delayed store")
    first.kill()
    serve(functions, "-c", "1")
    assert result.get(timeout=RESULT_TIMEOUT + 10) == 42
