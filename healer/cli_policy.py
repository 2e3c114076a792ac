"""`healer policy show|check|resume`: the effective policy, its validation, and lifting the circuit breaker."""

from __future__ import annotations

import json
import sys

from healer.errors import HealerError


def _cmd_show(args) -> int:
    from healer.governance.effective import effective

    try:
        eff = effective(args.repo, args.pipeline)
    except HealerError as exc:
        if not args.json:
            raise
        print(json.dumps({"status": "error", "reason": str(exc)}))
        return 1
    pauses = _pauses(args.pipeline)
    if args.json:
        print(json.dumps(eff.to_json() | {"status": "ok", "paused": pauses}))
        return 0
    rows = eff.rows()
    width = max(len(k) for k, _v, _w in rows)
    vwidth = min(40, max(len(v) for _k, v, _w in rows))
    print(f"effective policy of {'pipeline ' + repr(args.pipeline) if args.pipeline else 'the repo'} "
          f"in {args.repo}:")
    for key, value, where in rows:
        print(f"  {key:<{width}}  {value:<{vwidth}}  {where}")
    for line in pauses:
        print(f"  {line}")
    return 0


def _pauses(pipeline: str | None) -> list[str]:
    """Pauses in force (of the pipeline, or all of them), as lines; the ledger may be absent."""
    from healer.cli_ledger import reading_ledger
    from healer.governance import breaker

    try:
        ledger = reading_ledger()  # a reading command: it never creates a ledger
        found = breaker.pauses(ledger) if ledger is not None else []
    except HealerError as exc:
        return [f"circuit breaker: cannot read the ledger: {exc}"]
    return [p.one_line() for p in found if pipeline is None or p.pipeline in (pipeline, breaker.ANY_PIPELINE)]


def _cmd_check(args) -> int:
    from healer.governance.effective import check, org_file

    problems = check(args.repo)
    if args.json:
        print(json.dumps({"status": "invalid" if problems else "valid", "problems": problems}))
    else:
        for line in problems:
            print(f"healer: {line}", file=sys.stderr)
        if not problems:
            files = ", ".join(f for f in (org_file(), f"{args.repo}/healer.yml") if f)
            print(f"policy valid: {files}")
    return 1 if problems else 0


def _cmd_resume(args) -> int:
    from healer.governance import breaker
    from healer.ledger import Ledger

    try:
        lifted = breaker.resume(Ledger(), args.pipeline, args.fixer)
    except HealerError as exc:
        if not args.json:
            raise
        print(json.dumps({"status": "error", "reason": str(exc)}))
        return 1
    if args.json:
        print(json.dumps({"status": "resumed", "pipeline": lifted.pipeline, "fixer": lifted.fixer,
                          "was": lifted.reason}))
    else:
        print(f"resumed healing of {lifted.scope()} (paused since {lifted.at:%Y-%m-%d %H:%M} UTC: {lifted.reason})")
    return 0


def register(sub) -> None:
    """Add ``healer policy show|check|resume`` to the command line."""
    policy = sub.add_parser("policy", help="the healing policy: show it, check its files, resume a paused pipeline")
    verbs = policy.add_subparsers(dest="verb", required=True)
    p = verbs.add_parser("show", help="the effective policy and which level (file:key) set each value")
    p.add_argument("--pipeline", help="the pipeline whose overrides apply (default: the repo's level)")
    p.add_argument("--repo", default=".", help="the pipeline repo (holding healer.yml); default: .")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=_cmd_show)
    p = verbs.add_parser("check", help="validate the org file and healer.yml's healing blocks; exit 1 on any problem")
    p.add_argument("--repo", default=".", help="the pipeline repo (holding healer.yml); default: .")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=_cmd_check)
    p = verbs.add_parser("resume", help="lift the circuit breaker's pause of a pipeline ('*': the every-pipeline one)")
    p.add_argument("pipeline")
    p.add_argument("--fixer", help="lift the pause of this fixer only")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=_cmd_resume)
