"""The installed `verigrad` console script, in a subprocess (one test)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest


def test_console_script_check_json(tmp_path):
    exe = shutil.which("verigrad")
    if exe is None:
        pytest.skip("the verigrad console script is not on PATH (package not installed)")
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.run([exe, "check", "--inject-bug", "sign", "--json", "-"], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    assert data["diagnosis"]["kind"] == "sign"
    bad = subprocess.run([exe, "check", "--mode", "slow"], capture_output=True, text=True, cwd=tmp_path, env=env,
                         timeout=120)
    assert bad.returncode == 2
    assert "invalid choice: 'slow'" in bad.stderr
    assert sys.executable  # the test ran under an interpreter
