"""Cold shutdown on every broker: SIGQUIT, or a second SIGTERM during the warm shutdown, stops the
host at once (exit 0) without waiting for running tasks; with `acks_late` (the default) their
deliveries go back to the queue and run to completion on the next host."""

import signal

import pytest

from helpers import RESULT_TIMEOUT


@pytest.mark.all_brokers
@pytest.mark.parametrize("signals", [["SIGQUIT"], ["SIGTERM", "SIGTERM"]], ids=["sigquit", "sigterm-twice"])
def test_cold_shutdown_gives_running_tasks_back_and_the_next_host_completes_them(
        serve, make_functions, celery_app, signals):
    functions = make_functions()
    first = serve(functions, "-c", "2", "-l", "debug")
    assert celery_app.send_task("math.add", args=[1, 1], queue="math.add").get(timeout=RESULT_TIMEOUT) == 2
    running = [celery_app.send_task("math.slow", args=[10 + i / 1000], queue="math.slow") for i in range(2)]
    for i in range(2):
        first.wait_for_log(rf"math.slow: sleeping {10 + i / 1000:.3f} s in pid \d+")

    for name in signals:
        first.proc.send_signal(getattr(signal, name))
        if name == "SIGTERM" and len(signals) > 1:
            first.wait_for_log(r"warm shutdown")
    assert first.proc.wait(30) == 0, first.describe()
    assert "cold shutdown: 2 running task(s) abandoned" in first.log
    assert not any(r.ready() for r in running), "a cold shutdown must not wait for running tasks"

    second = serve(functions, "-c", "2", "-l", "debug")
    for r in running:
        assert set(r.get(timeout=60)) == {"pid", "start", "end"}
    for i in range(2):
        assert f"sleeping {10 + i / 1000:.3f} s" in second.log
    assert second.terminate() == 0, second.describe()


@pytest.mark.all_brokers
def test_warm_shutdown_finishes_the_running_task_exits_zero_and_the_next_host_serves_the_rest(
        serve, make_functions, celery_app):
    functions = make_functions()
    first = serve(functions, "-c", "1", "-l", "debug")
    assert celery_app.send_task("math.add", args=[1, 1], queue="math.add").get(timeout=RESULT_TIMEOUT) == 2
    running = celery_app.send_task("math.slow", args=[3.001], queue="math.slow")
    waiting = [celery_app.send_task("math.slow", args=[0.1 + i / 1000], queue="math.slow") for i in range(3)]
    first.wait_for_log(r"math.slow: sleeping 3\.001 s in pid \d+")

    first.proc.send_signal(signal.SIGTERM)
    assert first.proc.wait(60) == 0, first.describe()
    assert set(running.get(timeout=RESULT_TIMEOUT)) == {"pid", "start", "end"}, "the running task finishes before exit"
    assert "sleeping 0.10" not in first.log, "no task starts once the warm shutdown began"

    second = serve(functions, "-c", "1", "-l", "debug")
    for r in waiting:
        assert set(r.get(timeout=60)) == {"pid", "start", "end"}
    assert "sleeping 3.001" not in second.log, "the finished task is not run again"
