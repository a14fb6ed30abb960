"""The house rules that tools can check: lint, strict types on the pure core, a pure core."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN_IN_CORE = {"litestar", "arq", "redis", "sqlalchemy", "asyncpg", "aiosqlite", "httpx"}


def test_ruff_finds_nothing():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "hub", "plugins", "tests", "bench"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_core_passes_mypy_strict():
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", "hub/core"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_core_imports_no_web_queue_or_database_library():
    for path in (ROOT / "hub" / "core").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN_IN_CORE, f"{path.name} imports {name}"


def test_no_module_is_over_800_lines():
    for path in list((ROOT / "hub").rglob("*.py")) + list((ROOT / "plugins").rglob("*.py")):
        if "migrations/versions" in str(path):
            continue
        assert len(path.read_text().splitlines()) <= 800, f"{path} is over 800 lines"
