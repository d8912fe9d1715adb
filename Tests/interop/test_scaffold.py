"""`fnhost new NAME --lang c|swift` scaffolds a plugin that builds and passes its own test, and
whose `make install` a running host picks up."""

import re
import subprocess

import pytest

from helpers import RESULT_TIMEOUT, clean_env, wait_until


def make(directory, *targets, timeout=600):
    res = subprocess.run(["make", "-C", str(directory), *targets], capture_output=True, text=True, timeout=timeout, env=clean_env())
    assert res.returncode == 0, f"make {' '.join(targets)} failed:\n{res.stdout}\n{res.stderr}"
    return res.stdout


def test_c_plugin_builds_passes_its_test_and_installs_into_a_running_host(fnhost_cli, serve, make_functions, celery_app, tmp_path):
    functions = make_functions(examples=False)
    host = serve(functions)
    out = fnhost_cli("new", "demo", "--lang", "c", "--directory", tmp_path / "demo", "--functions", functions)
    assert out.returncode == 0, out.stderr
    assert "make test && make install" in out.stdout
    assert "demo: all tests passed" in make(tmp_path / "demo", "test")
    make(tmp_path / "demo", "install")
    wait_until(lambda: host.stderr.search(r"reload: libdemo\.so generation 1 serves demo\.add, demo\.echo"), 30, "the installed plugin")
    assert celery_app.send_task("demo.add", args=[40, 2], queue="demo.add").get(timeout=RESULT_TIMEOUT) == 42
    assert celery_app.send_task("demo.echo", args=["x", 1], queue="demo.echo").get(timeout=RESULT_TIMEOUT) == ["x", 1]


def test_swift_plugin_builds_and_passes_its_test(fnhost_cli, tmp_path):
    out = fnhost_cli("new", "greeter", "--lang", "swift", "--directory", tmp_path / "greeter")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "greeter" / "Sources" / "Greeter" / "Greeter.swift").is_file()
    assert "greeter: all tests passed" in make(tmp_path / "greeter", "test")


@pytest.mark.parametrize("name", ["Demo", "9lives", "my-plugin", "a b"])
def test_bad_plugin_name_is_refused(fnhost_cli, tmp_path, name):
    out = fnhost_cli("new", name, "--directory", tmp_path / "x")
    assert out.returncode != 0
    assert "lower-case C identifier" in out.stderr
    assert not (tmp_path / "x").exists()


def test_existing_directory_is_never_overwritten(fnhost_cli, tmp_path):
    (tmp_path / "demo").mkdir()
    out = fnhost_cli("new", "demo", "--directory", tmp_path / "demo")
    assert out.returncode != 0
    assert re.search(r"already exists", out.stderr)
    assert list((tmp_path / "demo").iterdir()) == []
