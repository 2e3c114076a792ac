"""Healer as a user installs it: the built wheel in a fresh venv (from the lock), away from the checkout.

The checkout puts its own folder on ``sys.path`` (an editable install), which hid two bugs:
``healer demo`` imported the example ``pipelines`` package that no wheel carries, and
``log4j2.properties`` was left out, so Spark's quiet logging fell away for installed users.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
UV = ROOT / ".venv" / "bin" / "uv"
SOURCES = ["healer", "pipelines", "setup.cfg", "pyproject.toml", "README.md"]  # what the build reads


@dataclass
class Installed:
    wheel: Path
    venv: Path
    env: dict[str, str]

    def run(self, *args: str, cwd: Path, timeout: int, **extra_env: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.venv / "bin" / args[0]), *args[1:]], cwd=cwd, capture_output=True,
                              text=True, timeout=timeout, env={**self.env, **extra_env})


def _uv(*args: str, timeout: int = 600) -> None:
    done = subprocess.run([str(UV), *args], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"uv {' '.join(args)}:\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    """The wheel built from a copy of this tree, installed with --no-deps into a new venv that
    holds exactly the locked dependencies (the build leaves the checkout untouched)."""
    if not UV.exists():
        pytest.skip(f"uv is not installed at {UV} (`make install` puts it there)")
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    junk = shutil.ignore_patterns("__pycache__", "*.pyc", "data", "output", "*.egg-info")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, symlinks=True, ignore=junk)
        else:
            shutil.copy2(ROOT / name, src / name)
    _uv("build", "--quiet", "--wheel", "--out-dir", str(base / "dist"), str(src))
    [wheel] = (base / "dist").glob("healer-*.whl")
    venv = base / "venv"
    _uv("venv", "--quiet", "--python", sys.executable, str(venv))
    _uv("pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), "-r", str(ROOT / "requirements.lock"))
    _uv("pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), "--no-deps", str(wheel))
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME") and not k.startswith(("HEALER_", "AIRFLOW"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"):  # the demo heals with rules; no model is reached
        env.pop(name, None)
    return Installed(wheel=wheel, venv=venv, env=env)


def test_the_wheel_carries_the_files_the_code_reads(installed):
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    assert "healer/runner/log4j2.properties" in names
    assert {"healer/examples/generate.py", "healer/examples/drift.py", "healer/examples/retail/healer.yml"} <= names
    jobs = {f"healer/examples/retail/jobs/{p.name}" for p in (ROOT / "pipelines" / "jobs").iterdir() if p.is_file()}
    assert jobs and jobs <= names, sorted(jobs - names)
    assert not any(n.startswith("pipelines/") for n in names)  # the checkout's shims stay in the checkout


def test_healer_demo_runs_from_the_installed_wheel(installed, tmp_path):
    where = installed.run("python", "-c", "import healer, healer.runner.session as s; "
                                          "print(healer.__file__); print(s._LOG4J.is_file())", cwd=tmp_path, timeout=60)
    assert where.returncode == 0, where.stderr
    module, log4j = where.stdout.split()
    assert Path(module).is_relative_to(installed.venv), module  # the installed copy, not the checkout
    assert log4j == "True"

    done = installed.run("healer", "demo", "--rows", "5000", cwd=tmp_path, timeout=900)

    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    assert "ModuleNotFoundError" not in done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("proposed: upstream column was renamed in order_items: unit_price → item_price")
               for line in lines), done.stdout[-3000:]
    assert any(line.startswith("PR #1 [open] heal(revenue_by_category): ") for line in lines), done.stdout[-3000:]
    assert "success: " in done.stdout.split("8. Re-run the pipeline from the PR branch")[1]
    # Spark read Healer's log4j2.properties: none of its default-profile chatter
    assert "Setting default log level" not in done.stderr, done.stderr[-3000:]
    assert "log4j2-defaults.properties" not in done.stderr


def test_airflow_lists_the_healer_plugin_from_the_installed_wheel(installed, tmp_path):
    home = tmp_path / "airflow"
    home.mkdir()
    done = installed.run("airflow", "plugins", "--output", "json", cwd=tmp_path, timeout=300,
                         AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    assert done.returncode == 0, done.stderr[-3000:]
    plugins = {p["name"]: p for p in json.loads(done.stdout[done.stdout.index("["):])}
    assert "healer" in plugins, sorted(plugins)
    healer = plugins["healer"]
    assert healer["source"].startswith("healer==0.1.0: EntryPoint(name='healer', "
                                       "value='healer.airflow.plugin:HealerPlugin', group='airflow.plugins')")
    assert healer["listeners"] == ["healer.airflow.listener"]
    assert {"url_prefix": "/healer", "name": "Healer"}.items() <= healer["fastapi_apps"][0].items()
