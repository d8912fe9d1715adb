"""Deliveries left in `unacked` by a host that died are redelivered by kombu's visibility-timeout
restore, which fnhost runs itself (so no Python worker is needed), and a host never gives back
deliveries it is still running."""

from helpers import RESULT_TIMEOUT, ack_bookkeeping_is_empty, unacked_task_ids, wait_until


def config(tmp_path, seconds):
    path = tmp_path / "fnhost.yml"
    path.write_text(f"broker_transport_options: {{visibility_timeout: {seconds}}}\n")
    return path


def test_delivery_of_a_killed_host_runs_on_another_host_after_the_visibility_timeout(
        serve, make_functions, celery_app, redis_dbs, tmp_path):
    functions = make_functions()
    first = serve(functions, "-c", "1", "--config", config(tmp_path, 2))
    result = celery_app.send_task("math.slow", args=[4], queue="math.slow")
    wait_until(lambda: result.id in unacked_task_ids(redis_dbs.broker), 10, "the task to be delivered")
    first.kill()
    assert result.id in unacked_task_ids(redis_dbs.broker), "the delivery must survive the host's death"

    second = serve(functions, "-c", "1", "--config", config(tmp_path, 2))
    value = result.get(timeout=RESULT_TIMEOUT + 10)
    assert set(value) == {"pid", "start", "end"}
    assert "restored 1 deliveries" in second.log
    wait_until(lambda: ack_bookkeeping_is_empty(redis_dbs.broker), 10, "unacked to be empty")


def test_a_host_does_not_restore_deliveries_it_is_running(serve, make_functions, celery_app, redis_dbs, tmp_path):
    host = serve(make_functions(), "-c", "2", "--config", config(tmp_path, 1))
    results = [celery_app.send_task("math.slow", args=[3], queue="math.slow") for _ in range(2)]
    pids = {r.get(timeout=RESULT_TIMEOUT)["pid"] for r in results}
    assert len(pids) >= 1
    assert "restored" not in host.log
    assert redis_dbs.broker.llen("math.slow") == 0
    wait_until(lambda: ack_bookkeeping_is_empty(redis_dbs.broker), 10, "unacked to be empty")
