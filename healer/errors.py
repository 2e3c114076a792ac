"""Exceptions Healer raises.

    HealerError                  anything Healer reports as a clear one-line error
    ├── ConfigError              a bad healer.yml, expectations file or setting   (stage: config)
    │   ├── ExpectationsError    a bad expectations file
    │   └── PolicyError          a bad policy file, or a lower policy level loosening a higher one
    ├── EnvironmentProblem       Java missing or too old, a service not reachable
    ├── RunFailed                a pipeline run failed at a stage (input, job, audit, publish)
    ├── MissingInput             an input path or table does not exist
    ├── UnreadableInput          an input Spark cannot read as it was written (the message says how to write it)
    ├── Declined                 a fixer recognises the failure but will not patch it (the message says why)
    ├── WorkspaceError           a repo that cannot be cloned, is dirty or cannot be pushed
    ├── ForgeError               a pull request that cannot be opened, read or merged
    │   └── ApiError             a forge's API answered with an error (``status``) or was not reached (0)
    ├── LLMUnavailable           the model cannot be asked: no key, API failing, deadline passed
    │   └── LLMBudgetSpent       the heal's token budget is spent
    ├── ModelAnswerError         a model reply that is not a usable answer (malformed, not JSON)
    │   └── ReplyTooLarge        a reply over the size cap
    └── LedgerError              the ledger cannot be read or written
"""

from __future__ import annotations


class HealerError(Exception):
    """Base class: the message is one line that says what went wrong and where."""


class ConfigError(HealerError):
    """A manifest, expectations file or setting is invalid."""


class ExpectationsError(ConfigError):
    """An expectations file is invalid."""


class PolicyError(ConfigError):
    """A policy file (HEALER_POLICY_FILE, healer.yml's healing blocks) is invalid, or a level loosens one above."""


class EnvironmentProblem(HealerError):
    """The machine lacks something Healer needs (Java, a service)."""


class RunFailed(HealerError):
    """A pipeline run failed; ``stage`` says where, ``run`` holds the recorded run."""

    def __init__(self, message: str, stage: str, run=None):
        super().__init__(message)
        self.stage = stage
        self.run = run


class MissingInput(HealerError):
    """An input path or table does not exist."""


class UnreadableInput(HealerError):
    """An input Spark cannot read as it was written; the message says how to write it instead."""


class Declined(HealerError):
    """Raised by a rule that recognises the failure but will not patch it; the message says why.

    A rule that simply does not apply returns no patches; one that sees its kind of breakage
    and refuses (a broken feed rather than a few bad rows, an ambiguous cause) says so, and
    the reason reaches the heal's outcome.
    """


class WorkspaceError(HealerError):
    """A git repository could not be cloned, branched, committed or pushed."""


class ForgeError(HealerError):
    """A pull request could not be opened, read or changed."""


class ApiError(ForgeError):
    """A forge answered with an error (``status``) or could not be reached (``status`` 0)."""

    def __init__(self, message: str, status: int = 0, detail: str = ""):
        super().__init__(message)
        self.status = status
        self.detail = detail


class LedgerError(HealerError):
    """The ledger could not be read or written."""


class LLMUnavailable(HealerError):
    """The model could not be asked: no key, the API kept failing, or the heal's model deadline passed."""


class LLMBudgetSpent(LLMUnavailable):
    """The heal's token budget is spent: a limit reached, like the round limit, not an outage."""


class ModelAnswerError(HealerError):
    """A model reply that is not a usable answer: not a Messages API message, malformed, or too big."""


class ReplyTooLarge(ModelAnswerError):
    """A reply over the size cap: refused unread, never sent back; the model may be asked for a shorter one."""
