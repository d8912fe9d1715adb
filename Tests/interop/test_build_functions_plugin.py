"""The SwiftPM command plugin builds every plugin product into functions/ (write, then rename),
and what it installs serves: `swift package --allow-writing-to-package-directory build-functions`."""

import os
import shutil
import subprocess

from helpers import REPO


def test_build_functions_installs_the_swift_plugin_that_then_runs(fnhost_cli):
    swift = shutil.which("swift")
    assert swift, "swift is not on PATH"
    target = REPO / "functions" / "libtext.so"
    before = target.stat().st_mtime_ns if target.exists() else 0
    # --debug reuses the debug build `make` already made, so this stays quick.
    done = subprocess.run([swift, "package", "--allow-writing-to-package-directory", "build-functions", "--debug"],
                          cwd=REPO, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"installed {target}" in done.stdout
    assert target.stat().st_mtime_ns > before
    assert not [p for p in os.listdir(REPO / "functions") if p.endswith(".tmp")], "a temporary file was left behind"
    call = fnhost_cli("call", "--functions", REPO / "functions", "text.upper", '"ok"')
    assert call.returncode == 0, call.stderr
    assert call.stdout.strip() == '"OK"'
