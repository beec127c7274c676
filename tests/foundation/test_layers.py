"""Imports flow one way: reviewers -> workflows -> mailbot.

mailbot imports neither workflows nor reviewers; workflows never imports
reviewers; the knowledge base and the LLM client import no mail, queue or web
code.  Only ``mailbot_cli`` (the composition root) imports all three.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FORBIDDEN = {
    "mailbot": ("workflows", "reviewers", "mailbot_cli"),
    "workflows": ("reviewers", "mailbot_cli"),
    "reviewers": ("mailbot_cli",),
    "mailbot/codes": ("workflows", "reviewers", "mailbot.mail", "mailbot.services", "fastapi", "dramatiq"),
    "mailbot/drafting/llm.py": ("workflows", "reviewers", "mailbot.mail", "mailbot.services", "fastapi", "dramatiq"),
    "mailbot/drafting/tools.py": ("workflows", "reviewers", "mailbot.mail", "mailbot.services", "fastapi", "dramatiq"),
    "mailbot/answers": ("workflows", "reviewers", "mailbot.mail", "mailbot.services", "fastapi", "dramatiq"),
}


def _imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


@pytest.mark.parametrize("area", sorted(FORBIDDEN))
def test_imports_respect_the_layering(area):
    target = ROOT / area
    files = [target] if target.suffix == ".py" else sorted(target.rglob("*.py"))
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in files if path.exists()
        for line, name in _imports(path)
        if any(name == banned or name.startswith(banned + ".") for banned in FORBIDDEN[area])
    ]
    assert not wrong, "\n".join(wrong)
