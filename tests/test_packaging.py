"""A non-editable install works: the wheel holds everything Hub needs and `hub plugins` runs from it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from hub.plugins import DEFAULT_PLUGINS

ROOT = Path(__file__).resolve().parent.parent
# Build from a copy, so the build/ and *.egg-info directories setuptools writes never land in the
# working tree (nor race with another build of it).
IGNORE = shutil.ignore_patterns(".git", ".venv", "var", "build", "dist", "*.egg-info", "__pycache__",
                                "*.pyc", ".pytest_cache", ".ruff_cache", ".hypothesis", "bench")


def run(args: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "PYTHON"))}
    env.update(kwargs.pop("env", {}))
    return subprocess.run(args, capture_output=True, text=True, timeout=300, env=env, **kwargs)


def build_backend_installed() -> bool:
    """Whether pyproject's [build-system] (setuptools>=69, wheel) is installed here."""
    try:
        major = int(metadata.version("setuptools").split(".")[0])
        metadata.version("wheel")
    except (metadata.PackageNotFoundError, ValueError):
        return False
    return major >= 69


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source") / "hub"
    shutil.copytree(ROOT, source, ignore=IGNORE)
    out = tmp_path_factory.mktemp("wheel")
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)]
    if build_backend_installed():
        built = run([*pip_wheel, "--no-build-isolation", "--no-index"])
    else:  # a fresh venv has an old setuptools and no wheel: let pip fetch [build-system] requires
        built = run(pip_wheel)
    assert built.returncode == 0, f"pip wheel failed:\n{built.stderr[-3000:]}"
    (path,) = out.glob("hub_engage-*.whl")
    return path


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("target")
    result = run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q",
                  "--target", str(target), str(wheel)])
    assert result.returncode == 0, result.stderr
    return target


def python_from(target: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run this Python without site processing (so the editable install's finder cannot answer),
    with the install target first and only the venv's site-packages (for dependencies) after it."""
    site_packages = sysconfig.get_paths()["purelib"]
    return run([sys.executable, "-S", *args], cwd=cwd,
               env={"PYTHONPATH": os.pathsep.join([str(target), site_packages])})


@pytest.mark.slow
def test_wheel_holds_the_packages_and_the_migrations_and_claims_no_generic_name(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    migrations = ROOT / "hub" / "db" / "migrations"
    for path in ["alembic.ini", "script.py.mako", "env.py", *(
            f"versions/{p.name}" for p in (migrations / "versions").glob("*.py"))]:
        assert f"hub/db/migrations/{path}" in names, f"the wheel lacks hub/db/migrations/{path}"
    assert any(n.startswith("hub/db/migrations/versions/0") for n in names)
    assert "hub_plugins/__init__.py" in names and "hub/py.typed" in names
    top_level = {name.split("/")[0] for name in names}
    assert {n for n in top_level if not n.endswith(".dist-info")} == {"hub", "hub_plugins"}
    (dist_info,) = {n for n in top_level if n.endswith(".dist-info")}
    entry_points = zipfile.ZipFile(wheel).read(f"{dist_info}/entry_points.txt").decode()
    assert "hub = hub.cli:main" in entry_points and "hub = hub.testing" in entry_points


@pytest.mark.slow
def test_hub_plugins_runs_from_a_non_editable_install(installed, tmp_path):
    where = python_from(installed, tmp_path, "-c",
                        "import hub, hub_plugins, hub.db.migrations as m; "
                        "print(hub.__file__); print(hub_plugins.__file__); print(m.__file__)")
    assert where.returncode == 0, where.stderr
    for line in where.stdout.split():
        assert Path(line).is_relative_to(installed), f"{line} is not from the install"
    listed = python_from(installed, tmp_path, "-m", "hub", "plugins", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert {name for name, row in rows.items() if row["builtin"]} == set(DEFAULT_PLUGINS)
    assert "hub_register_routes" in rows["hub.api.ops"]["hooks"]
    assert (installed / "bin" / "hub").exists()  # the console script


@pytest.mark.slow
def test_migrations_run_from_a_non_editable_install(installed, tmp_path):
    database = tmp_path / "hub.db"
    result = python_from(installed, tmp_path, "-c", (
        "import asyncio\n"
        "from hub.db import make_engine, migrate\n"
        "async def main():\n"
        f"    engine = make_engine('sqlite+aiosqlite:///{database}')\n"
        "    await migrate.upgrade(engine)\n"
        "    print(await migrate.current(engine))\n"
        "    print(await migrate.pending(engine))\n"
        "    await engine.dispose()\n"
        "asyncio.run(main())\n"))
    assert result.returncode == 0, result.stderr
    # The core's head and the head of every built-in plugin's branch: plugin migrations ship too.
    at, pending = result.stdout.strip().splitlines()
    assert pending == "[]"
    branches = {rev.rsplit("_", 1)[0] for rev in at.split(",")}
    assert {"sdk_streams", "webhooks_in", "webhooks_out", "push_fcm"} <= branches
