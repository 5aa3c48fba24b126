"""The README's quickstart is code a newcomer pastes: it must run and its assertions must hold."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_quickstart_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert blocks, "README.md has no python code block"
    namespace: dict = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)  # noqa: S102 - our own README
    assert namespace["report"].passed
    assert namespace["history"].metrics["accuracy"][-1] >= 0.95
    assert namespace["wrong"].passed is False
    assert namespace["wrong"].diagnosis.kind == "mismatch"


def test_readme_commands_match_ci():
    text = README.read_text(encoding="utf-8")
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    test_cmd = 'python -m pip install -e ".[test]" && python -m pytest -q'
    assert test_cmd in text and test_cmd in ci
    assert 'pip install -e ".[plot,rich]" && verigrad demo' in text
