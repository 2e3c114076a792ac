"""`healer sync`: pull request states read back from the forges into the ledger."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict


def _cmd_sync(args) -> int:
    from healer.forges import sync
    from healer.governance.verify import verify_after_sync
    from healer.ledger import Ledger

    ledger = Ledger()
    results = sync(ledger, forge=args.forge, revert_window_days=args.revert_window)
    errors = [r for r in results if r.error]
    # merged fixes are watched from here; their next runs verify them (healer.governance.verify)
    checked = verify_after_sync(ledger, results)
    if args.json:
        print(json.dumps([asdict(r) | {"changed": r.changed} for r in results]))
    else:
        for r in results:
            if r.changed or args.all:
                print(r.one_line())
        counts: dict[str, int] = {}
        for r in results:
            if r.changed:
                counts[r.after] = counts.get(r.after, 0) + 1
        moved = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no changes"
        print(f"synced {len(results) - len(errors)} of {len(results)} pull requests: {moved}")
        for c in checked:
            print(c.one_line())
    for r in errors:
        print(f"healer: {r.one_line()}", file=sys.stderr)
    return 1 if errors else 0


def register(sub) -> None:
    """Add ``healer sync`` to the command line."""
    p = sub.add_parser("sync", help="read pull request states (merged, closed, reverted) back into the ledger; "
                                    "open pull requests left pending")
    p.add_argument("--forge", choices=["github", "gitlab", "local"], help="only pull requests on this forge")
    p.add_argument("--revert-window", type=int, default=30, metavar="DAYS",
                   help="watch merged pull requests this long for a revert (default 30)")
    p.add_argument("--all", action="store_true", help="print unchanged pull requests too")
    p.add_argument("--json", action="store_true", help="print one JSON list of results")
    p.set_defaults(func=_cmd_sync)
