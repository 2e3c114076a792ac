"""`healer audit` (the trail of every heal) and `healer verify` (merged fixes against their next runs)."""

from __future__ import annotations

import json
import sys


def _cmd_audit(args) -> int:
    from healer.cli_ledger import reading_ledger
    from healer.errors import HealerError
    from healer.governance import audit

    try:
        since = audit.parse_since(args.since) if args.since else None
    except HealerError as exc:
        if args.json:  # --json always prints an outcome
            print(json.dumps({"error": str(exc)}))
        raise
    ledger = reading_ledger()  # a reading command: it never creates a ledger
    found = audit.events(ledger, heal_id=args.heal, since=since, pipeline=args.pipeline) if ledger else []
    if args.json:  # JSON Lines, one event a line: what a SIEM ingests
        for e in found:
            print(json.dumps(e.to_json(), default=str))
        return 0
    if not found:
        print("no audit events" + (f" for heal #{args.heal}" if args.heal is not None else ""))
        return 0
    print(f"{'at (UTC)':<23}  {'heal':>5}  {'action':<16}  detail")
    for e in found:
        heal = f"#{e.heal_id}" if e.heal_id is not None else "-"
        print(f"{e.at:%Y-%m-%d %H:%M:%S.%f}"[:23] + f"  {heal:>5}  {e.action.value:<16}  {e.summary()}")
    return 0


def _cmd_verify(args) -> int:
    from healer.governance import verify
    from healer.ledger import Ledger

    results = verify.check(Ledger())
    if args.json:
        print(json.dumps([r.to_json() for r in results]))
        return 0
    for r in results:
        print(r.one_line())
    if not results:
        print("no merged Healer fix is waiting for verification")
    problems = [r for r in results if r.problem]
    for r in problems:
        print(f"healer: heal #{r.heal_id}: {r.problem}", file=sys.stderr)
    return 1 if problems else 0


def register(sub) -> None:
    """Add ``healer audit`` and ``healer verify`` to the command line."""
    p = sub.add_parser("audit", help="the audit trail: every action of every heal, with its time (append-only)")
    p.add_argument("--heal", type=int, help="only this heal's events")
    p.add_argument("--pipeline", help="only this pipeline's events")
    p.add_argument("--since", metavar="ISO|AGE", help="only events since a time (2026-11-30, 2026-11-30T06:00Z) "
                                                      "or an age (7d, 12h, 30m)")
    p.add_argument("--json", action="store_true", help="JSON Lines, one event a line (for a SIEM)")
    p.set_defaults(func=_cmd_audit)

    p = sub.add_parser("verify", help="check merged Healer fixes against the pipeline's next runs: verified, "
                                      "regressed (revert PR, circuit breaker) or unverified")
    p.add_argument("--json", action="store_true", help="print one JSON list of results")
    p.set_defaults(func=_cmd_verify)
