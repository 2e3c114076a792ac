"""`healer heal`, `healer sweep`, `healer prs`, `healer pr show|merge|close`, `healer demo`."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import traceback


class Terminated(SystemExit):
    """SIGTERM, raised in the main thread: every ``finally`` of the heal runs (workspace clone and
    sandbox temp dirs removed, the heal marked ``abandoned``, its lease released) and the
    process exits with 128 + the signal number, as if the signal had killed it.

    A SystemExit, not an Exception: ``except Exception`` anywhere in the heal must not swallow it.
    """

    def __init__(self, signum: int):
        super().__init__(128 + signum)
        self.signal = signal.Signals(signum).name

    def __str__(self) -> str:
        return f"terminated by {self.signal}"


def _redacted(text: str) -> str:
    from healer.redact import redact  # here, not at the top: the CLI starts before its heavy modules load

    return redact(text)


def _exit_on_sigterm() -> None:
    def terminate(signum, _frame):
        signal.signal(signum, signal.SIG_DFL)  # a second SIGTERM during the clean-up ends the process at once
        raise Terminated(signum)

    signal.signal(signal.SIGTERM, terminate)


def _cmd_heal(args) -> int:
    """`healer heal`: whatever happens, one outcome; with --json, one JSON document on stdout."""
    try:
        return _heal(args)
    except Exception as exc:  # the catch-all: --json promises an outcome, and a traceback is none
        from healer.errors import HealerError

        if isinstance(exc, HealerError):
            if not args.json:
                raise  # cli.main prints it as one line, as for every command
            reason = _one_line(exc)
        else:
            reason = f"unexpected {type(exc).__name__}: {_one_line(exc)}"
            # the traceback is for whoever debugs Healer: stderr, never stdout (which --json keeps for the outcome)
            print(f"healer heal: {reason}\n{traceback.format_exc()}", file=sys.stderr, end="")
        if args.json:
            outcome = _error_outcome(args, reason)
            print(json.dumps([outcome] if args.all else outcome, default=str))
        else:
            print(f"healer: {reason}", file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:500] or type(exc).__name__


def _error_outcome(args, reason: str) -> dict:
    """An `error` outcome of the usual shape, for a heal that could not produce its own."""
    try:
        from healer.heal import Outcome

        return Outcome("error", reason, pipeline=args.pipeline, failure=args.failure).to_json()
    except Exception:  # noqa: BLE001 - the heal module may be what failed to import
        return {"status": "error", "reason": reason, "pipeline": args.pipeline, "failure": args.failure}


def _heal(args) -> int:
    from healer.runner.warm import warm_up_for_heal

    _exit_on_sigterm()

    warm_up_for_heal()  # Spark and Great Expectations start while the heal loop's modules load
    from healer.heal import heal, heal_storm
    from healer.logs import progress

    # the heal's progress on stderr; with --json none (stdout stays pure JSON, stderr as quiet as before)
    shown = contextlib.nullcontext() if args.json else progress()
    if args.all:
        with shown:
            outcomes = heal_storm(args.repo, dry_run=args.dry_run)
        if args.json:
            print(json.dumps([o.to_json() for o in outcomes], default=str))
        for o in outcomes if not args.json else []:
            print(_redacted(f"{o.pipeline}: {o.status}: {o.reason}") + (f" (PR #{o.pr})" if o.pr else ""))
        if not outcomes:
            print("no pipeline's latest run failed", file=sys.stderr)
        codes = {o.exit_code for o in outcomes}
        return 1 if 1 in codes else 0 if 0 in codes else 3
    if not args.pipeline and args.failure is None:
        print("healer: heal needs --pipeline NAME, --failure ID or --all", file=sys.stderr)
        if args.json:
            print(json.dumps(_error_outcome(args, "heal needs --pipeline NAME, --failure ID or --all"), default=str))
        return 1
    with shown:
        outcome = heal(args.repo, args.pipeline, args.failure, dry_run=args.dry_run)
    if args.json:
        print(json.dumps(outcome.to_json(), default=str))
    else:
        print(_redacted(f"{outcome.status}: {outcome.reason}"))
        if outcome.pr:
            print(f"pull request #{outcome.pr} on branch {outcome.branch}: healer pr show {outcome.pr}")
    return outcome.exit_code


class _Forges:
    """The forge each recorded pull request lives on (merging a GitHub PR goes through GitHub)."""

    def __init__(self, ledger):
        self.ledger = ledger

    def _for(self, pr_id: int):
        from healer.errors import ForgeError
        from healer.forges import forge_for
        from healer.ledger import prs

        row = self.ledger.get(prs, pr_id)
        if not row:
            raise ForgeError(f"no pull request #{pr_id} in the ledger {self.ledger.url}")
        return forge_for(self.ledger, row)

    def list(self, status=None):
        from healer.forges import LocalForge

        return LocalForge(self.ledger).list(status=status)  # every forge records its PRs in the ledger

    def get(self, pr_id):
        return self._for(pr_id).get(pr_id)

    def merge(self, pr_id):
        return self._for(pr_id).merge(pr_id)

    def close(self, pr_id):
        return self._for(pr_id).close(pr_id)


def _forge() -> _Forges | None:
    """The forges of the ledger this command reads (announced on stderr); None when there is no ledger."""
    from healer.cli_ledger import reading_ledger

    ledger = reading_ledger()
    return _Forges(ledger) if ledger is not None else None


def _cmd_prs(args) -> int:
    forge = _forge()
    prs = forge.list(status=None if args.all else "open") if forge else []
    if not prs:
        print("no pull requests" if args.all else "no open pull requests")
    from healer.governance.verify import for_pr

    for pr in prs:
        checked = for_pr(forge.ledger, pr.id) if pr.status in ("merged", "reverted") else None
        print(pr.one_line() + (f"  [{checked.state}: {checked.reason}]" if checked else ""))
    return 0


def _cmd_pr(args) -> int:
    forge = _forge()
    if forge is None:
        from healer.errors import ForgeError

        raise ForgeError(f"no pull request #{args.id}: there is no ledger here")
    if args.action == "show":
        pr = forge.get(args.id)
        print(pr.one_line())
        print(f"remote: {pr.remote}\n")
        print(pr.body)
    elif args.action == "merge":
        print(forge.merge(args.id).one_line())
    else:
        print(forge.close(args.id).one_line())
    return 0


def _cmd_sweep(args) -> int:
    from healer.ledger import Ledger

    from healer import scratch

    ledger = Ledger()
    abandoned = ledger.abandon_expired()
    for a in abandoned:
        print(f"heal #{a.heal_id} (failure #{a.run_id}) abandoned: {a.reason}")
    if not abandoned:
        print("no heal had outlived its lease")
    for where in scratch.sweep(ledger):  # after the leases: a dead heal's scratch is removed only once its lease is gone
        print(f"removed the scratch of a heal that holds no lease: {where}")
    return 0


def _cmd_demo(args) -> int:
    from healer.demo import run_demo

    return run_demo(rows=args.rows, keep=args.keep)


def register(sub) -> None:
    p = sub.add_parser("heal", help="heal the latest failure of a pipeline: evidence, fix, sandbox, pull request")
    p.add_argument("--repo", default=".", help="the pipeline repo (holding healer.yml); default: .")
    p.add_argument("--pipeline", help="the pipeline whose latest failed run to heal")
    p.add_argument("--failure", type=int, help="the id of a recorded failed run (see `healer runs`)")
    p.add_argument("--all", action="store_true",
                   help="heal every pipeline whose latest run failed; one PR per shared root cause")
    p.add_argument("--json", action="store_true", help="print the outcome as one JSON object")
    p.add_argument("--dry-run", action="store_true", help="validate in the sandbox, push nothing, open no PR")
    p.set_defaults(func=_cmd_heal)

    p = sub.add_parser("sweep", help="mark heals whose lease expired (killed or crashed) as abandoned and remove "
                                     "their scratch; the healer DAG and every heal do this too")
    p.set_defaults(func=_cmd_sweep)

    p = sub.add_parser("prs", help="list pull requests on the local forge")
    p.add_argument("--all", action="store_true", help="include merged and closed ones")
    p.set_defaults(func=_cmd_prs)

    p = sub.add_parser("pr", help="show, merge or close a pull request on the local forge")
    p.add_argument("action", choices=["show", "merge", "close"])
    p.add_argument("id", type=int)
    p.set_defaults(func=_cmd_pr)

    p = sub.add_parser("demo", help="watch a pipeline break upstream and get healed, end to end")
    p.add_argument("--rows", type=int, default=50000, help="order lines of generated data (default 50000)")
    p.add_argument("--keep", action="store_true", help="keep the demo directory afterwards")
    p.set_defaults(func=_cmd_demo)
