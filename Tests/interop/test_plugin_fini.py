"""fnhost_plugin_fini runs in every worker process that loaded the plugin when it exits
normally: at a warm shutdown of `serve`, and after `fnhost call`."""

from helpers import RESULT_TIMEOUT, clean_env


def test_fini_runs_in_the_worker_process_at_warm_shutdown(serve, make_functions, celery_app, tmp_path):
    marker = tmp_path / "fini.log"
    host = serve(make_functions("fini", examples=False), "-c", "1", env=clean_env({"FNHOST_TEST_FINI_FILE": str(marker)}))
    pid = celery_app.send_task("fini.pid", queue="fini.pid").get(timeout=RESULT_TIMEOUT)
    assert host.terminate() == 0
    assert str(pid) in marker.read_text().split()


def test_fini_runs_after_fnhost_call(fnhost_cli, make_functions, tmp_path):
    marker = tmp_path / "fini.log"
    functions = make_functions("fini", examples=False)
    done = fnhost_cli("call", "--functions", str(functions), "fini.pid", env=clean_env({"FNHOST_TEST_FINI_FILE": str(marker)}))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in marker.read_text().split()
