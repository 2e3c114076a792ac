"""`healer demo`: a real pipeline breaks because upstream renamed a column, and gets healed.

Everything is local and real: a git repo with a bare origin, generated data, Spark, Great
Expectations, the ledger, a pull request on the local forge, and a re-run from the PR branch.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from healer.examples import template_dir

PIPELINE = "revenue_by_category"


def _say(step: str, text: str = "") -> None:
    print(f"\n\033[1m== {step}\033[0m" + (f"\n{text}" if text else ""), flush=True)


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)


def make_repo(repo: Path, origin: Path, *, template: Path | None = None, data: Path | None = None,
              author: tuple[str, str] = ("Data Team", "data@example.com")) -> Path:
    """A git repo of a pipelines folder (default: the example retail pipelines) at ``repo``, with a
    copy of ``data`` under data/ (ignored by git), committed by ``author`` (name, email, also
    the repo's identity for later commits) and pushed to a bare ``origin``."""
    shutil.copytree(template or template_dir(), repo,
                    ignore=shutil.ignore_patterns("data", "output", "__pycache__", "*.pyc"))
    if data is not None:
        shutil.copytree(data, repo / "data")
    (repo / ".gitignore").write_text("data/\noutput/\n__pycache__/\n")
    _git(repo.parent, "init", "-q", "--bare", "-b", "main", str(origin))
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.name", author[0])
    _git(repo, "config", "user.email", author[1])
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "retail pipelines")
    _git(repo, "remote", "add", "origin", str(origin))
    _git(repo, "push", "-q", "-u", "origin", "main")
    return repo


def run_demo(rows: int = 50000, keep: bool = False) -> int:
    from healer.errors import RunFailed
    from healer.examples import drift
    from healer.examples.generate import generate, write
    from healer.expectations import preload
    from healer.forges import LocalForge
    from healer.heal import heal
    from healer.ledger import Ledger
    from healer.logs import progress
    from healer.runner.run import run_pipeline
    from healer.runner.session import get_spark, start_spark

    t_start = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="healer-demo-"))
    repo, origin = base / "retail", base / "retail-origin.git"
    os.environ["HEALER_HOME"] = str(base / ".healer")
    os.environ.pop("HEALER_LEDGER_URL", None)
    if "HEALER_SANDBOX" not in os.environ and shutil.which("bwrap") is None:
        # The demo's fix is a rule's, which the weaker mode may run; a real heal would stop here.
        print("note: bubblewrap (bwrap) is not installed, so this demo's sandbox runs in process-only isolation "
              "(HEALER_SANDBOX=process); install it with: apt-get install bubblewrap")
        os.environ["HEALER_SANDBOX"] = "process"
    preload()
    start_spark("healer-demo", quick_jit=True)  # starts while the repo and the data are made

    _say("1. A pipeline repo", f"{repo} (origin: {origin})")
    make_repo(repo, origin)

    _say("2. Generated retail data", f"{rows:,} order lines")
    write(generate(rows), repo / "data")
    ledger = Ledger()
    spark = get_spark()

    _say(f"3. `healer run {PIPELINE}`: the pipeline works")
    good = run_pipeline(repo, PIPELINE, spark=spark, ledger=ledger, context={"source": "demo"})
    print(f"success: {good.row_count} rows -> {good.output_location}")

    _say("4. Upstream renames order_items.unit_price to item_price")
    drift.rename_column(repo / "data", "order_items", "unit_price", "item_price")

    _say(f"5. `healer run {PIPELINE}` again: it breaks")
    try:
        run_pipeline(repo, PIPELINE, spark=spark, ledger=ledger, context={"source": "demo"})
        print("unexpected: the run passed")
        return 1
    except RunFailed as exc:
        print(str(exc).splitlines()[0][:300])
        print(f"the previous output is untouched: {good.output_location}")

    _say(f"6. `healer heal --pipeline {PIPELINE}`")
    with progress(sys.stdout, indent="  "):  # the heal's stages, indented under the step
        outcome = heal(repo, PIPELINE, spark=spark, ledger=ledger)
    print(f"\n{outcome.status}: {outcome.reason}")
    if outcome.status != "proposed":
        return 1

    pr = LocalForge(ledger).get(outcome.pr)
    _say(f"7. The pull request (`healer pr show {pr.id}`)", pr.one_line() + "\n\n" + pr.body)

    _say("8. Re-run the pipeline from the PR branch, on the full drifted data")
    review = base / "review"
    _git(base, "clone", "-q", "--branch", outcome.branch, str(origin), str(review))
    env = {"WAREHOUSE": str(repo / "data"), "OUTPUT": str(base / "review-output")}
    rerun = run_pipeline(review, PIPELINE, spark=spark, ledger=ledger, env={**os.environ, **env},
                         context={"source": "demo-review"})
    print(f"success: {rerun.row_count} rows (the last good run had {good.row_count}) -> {rerun.output_location}")

    _say("Done", "\n".join([
        "heal timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in outcome.timings.items()),
        f"demo total: {time.monotonic() - t_start:.0f}s",
        f"merge it with: HEALER_HOME={base / '.healer'} healer pr merge {pr.id}" if keep else
        "(the demo directory is removed; use --keep to keep it)",
    ]))
    if not keep:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_demo())
