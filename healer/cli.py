"""`healer ...`: the command line. Every failure is one line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import json
import sys

from healer.errors import HealerError, RunFailed


def _cmd_run(args) -> int:
    from healer.runner.run import EXIT_CODES, run_pipeline

    try:
        record = run_pipeline(args.repo, args.pipeline, context={"source": "cli"})
    except RunFailed as exc:
        print(f"healer: {exc} (run {exc.run.id})", file=sys.stderr)
        if args.json:
            print(json.dumps(_run_json(exc.run), default=str))
        return EXIT_CODES.get(exc.stage, 1)
    if args.json:
        print(json.dumps(_run_json(record), default=str))
    else:
        print(f"{record.pipeline}: success: {record.row_count} rows -> {record.output_location} "
              f"(run {record.id}, {record.duration_s:.1f}s)")
    return 0


def _run_json(record) -> dict:
    return {"run": record.id, "pipeline": record.pipeline, "status": record.status, "stage": record.stage,
            "error_class": record.error_class, "error": record.error_message, "rows": record.row_count,
            "output": record.output_location, "duration_s": record.duration_s, "commit": record.commit}


def _cmd_runs(args) -> int:
    from healer.cli_ledger import reading_ledger

    ledger = reading_ledger()
    found = ledger.runs(pipeline=args.pipeline, limit=args.limit) if ledger else []
    if not found:
        print("no runs recorded" + (f" of {args.pipeline}" if args.pipeline else ""))
    for r in found:
        when = r.started_at.strftime("%Y-%m-%d %H:%M:%S") if r.started_at else "-"
        detail = f"{r.row_count} rows" if r.ok else f"{r.stage}: {r.error_class}"
        print(f"{r.id:>5}  {when}  {r.pipeline:<28} {r.status:<8} {detail}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="healer", description="Self-healing Spark and SQL pipelines.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run a pipeline with write-audit-publish and record the run")
    p.add_argument("pipeline")
    p.add_argument("--repo", default=".", help="the pipeline repo (holding healer.yml); default: .")
    p.add_argument("--json", action="store_true", help="print the run record as JSON")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("runs", help="list recorded runs, newest first")
    p.add_argument("--pipeline")
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(func=_cmd_runs)
    _register_more(sub)
    return parser


def _register_more(sub) -> None:
    """Commands of later stages of the flow register here (heal, prs, demo)."""
    try:
        from healer import cli_heal
    except ImportError:
        return
    cli_heal.register(sub)
    from healer import cli_audit, cli_forge

    cli_forge.register(sub)
    from healer import cli_policy

    cli_policy.register(sub)
    cli_audit.register(sub)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except HealerError as exc:
        print(f"healer: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("healer: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
