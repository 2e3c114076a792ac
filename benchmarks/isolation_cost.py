"""What isolation and the shadow run cost a cold heal, in seconds.

    python -m benchmarks.isolation_cost [--rows 30000] [--repeat 3] [--code DIR]

Makes the demo's breakage (upstream renames order_items.unit_price), then times `healer heal
--dry-run --json` in a new process, as a user waits for it, under each sandbox setting:

    bubblewrap + shadow   the default: sample gate under bubblewrap, then the full-data run and diff
    bubblewrap            HEALER_SHADOW=off: the sample gate only, under bubblewrap
    process               HEALER_SANDBOX=process, HEALER_SHADOW=off: a worker process, no namespaces

``--code DIR`` runs another checkout's Healer (e.g. a `git worktree` of an older commit,
whose sandbox ran candidates inside the healer's own process) on the same breakage; it then
times that code's default only. Everything runs through the command line, so any version
that has `healer run` and `healer heal` can be measured. Prints one row per setting: the
median and the spread of wall seconds, and the heal's own sandbox stage.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = "revenue_by_category"
SETTINGS = {
    "bubblewrap + shadow": {"HEALER_SANDBOX": "bubblewrap", "HEALER_SHADOW": "on"},
    "bubblewrap": {"HEALER_SANDBOX": "bubblewrap", "HEALER_SHADOW": "off"},
    "process": {"HEALER_SANDBOX": "process", "HEALER_SHADOW": "off"},
}


def _run(cmd: list[str], env: dict, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} … failed ({done.returncode}): {done.stderr.strip()[-400:]}")
    return done


def make_breakage(base: Path, rows: int, env: dict) -> Path:
    """A pipeline repo with a bare origin, a good run, the rename upstream, and the failed run."""
    repo, origin = base / "repo", base / "origin.git"
    shutil.copytree(ROOT / "pipelines", repo, ignore=shutil.ignore_patterns("data", "output", "__pycache__"))
    git = ["git", "-c", "user.name=Bench", "-c", "user.email=bench@example.com"]
    _run(["git", "init", "-q", "-b", "main", str(repo)], env, base)
    (repo / ".gitignore").write_text("data/\noutput/\n")
    _run([*git, "add", "-A"], env, repo)
    _run([*git, "commit", "-qm", "pipelines"], env, repo)
    _run(["git", "init", "-q", "--bare", str(origin)], env, base)
    _run(["git", "remote", "add", "origin", str(origin)], env, repo)
    _run(["git", "push", "-q", "origin", "main"], env, repo)
    py = [sys.executable, "-c"]
    _run([*py, f"from pipelines.generate import generate, write; write(generate({rows}), __import__('pathlib').Path('data'))"],
         env, repo)
    _run([sys.executable, "-m", "healer.cli", "run", PIPELINE, "--repo", str(repo)], env, repo)
    _run([*py, "from pipelines import drift; drift.rename_column(__import__('pathlib').Path('data'), "
               "'order_items', 'unit_price', 'item_price')"], env, repo)
    _run([sys.executable, "-m", "healer.cli", "run", PIPELINE, "--repo", str(repo)], env, repo, check=False)
    return repo


def time_heal(repo: Path, env: dict) -> tuple[float, dict]:
    t0 = time.monotonic()
    done = _run([sys.executable, "-m", "healer.cli", "heal", "--repo", str(repo), "--pipeline", PIPELINE,
                 "--dry-run", "--json"], env, repo, check=False)
    wall = time.monotonic() - t0
    try:
        outcome = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise SystemExit(f"healer heal printed no outcome: {done.stderr.strip()[-400:]}")
    if outcome.get("status") != "proposed":
        raise SystemExit(f"healer heal did not validate a fix: {outcome.get('reason')}")
    return wall, outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.isolation_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=30000, help="order lines (HealBench uses 30 000)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--code", type=Path, help="another checkout's Healer to time instead (its default only)")
    args = parser.parse_args(argv)
    code = (args.code or ROOT).resolve()
    base = Path(tempfile.mkdtemp(prefix="healer-isolation-cost-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEALER_", "ANTHROPIC_"))}
    env.update(PYTHONPATH=str(code), HEALER_HOME=str(base / ".healer"))
    settings = {"default": {}} if args.code else SETTINGS
    rows = []
    try:
        repo = make_breakage(base, args.rows, env)
        for name, extra in settings.items():
            walls, sandbox = [], []
            for _ in range(args.repeat):
                wall, outcome = time_heal(repo, {**env, **extra})
                walls.append(wall)
                sandbox.append(float(outcome.get("timings", {}).get("sandbox") or 0.0))
            rows.append((name, statistics.median(walls), min(walls), max(walls), statistics.median(sandbox)))
            print(f"{name}: {', '.join(f'{w:.1f}' for w in walls)} s", flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"\ncode: {code}; {args.rows:,} order lines; `healer heal --dry-run` in a new process, {args.repeat} runs each")
    print(f"{'setting':<22} {'median s':>9} {'min s':>7} {'max s':>7} {'sandbox stage s':>16}")
    for name, median, low, high, stage in rows:
        print(f"{name:<22} {median:>9.1f} {low:>7.1f} {high:>7.1f} {stage:>16.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
