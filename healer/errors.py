"""Exceptions Healer raises.

    HealerError                  anything Healer reports as a clear one-line error
    ├── ConfigError              a bad healer.yml, expectations file or setting   (stage: config)
    │   └── ExpectationsError    a bad expectations file
    ├── EnvironmentProblem       Java missing or too old, a service not reachable
    ├── RunFailed                a pipeline run failed at a stage (input, job, audit, publish)
    ├── WorkspaceError           a repo that cannot be cloned, is dirty or cannot be pushed
    ├── ForgeError               a pull request that cannot be opened, read or merged
    └── LedgerError              the ledger cannot be read or written
"""

from __future__ import annotations


class HealerError(Exception):
    """Base class: the message is one line that says what went wrong and where."""


class ConfigError(HealerError):
    """A manifest, expectations file or setting is invalid."""


class ExpectationsError(ConfigError):
    """An expectations file is invalid."""


class EnvironmentProblem(HealerError):
    """The machine lacks something Healer needs (Java, a service)."""


class RunFailed(HealerError):
    """A pipeline run failed; ``stage`` says where, ``run`` holds the recorded run."""

    def __init__(self, message: str, stage: str, run=None):
        super().__init__(message)
        self.stage = stage
        self.run = run


class WorkspaceError(HealerError):
    """A git repository could not be cloned, branched, committed or pushed."""


class ForgeError(HealerError):
    """A pull request could not be opened, read or changed."""


class LedgerError(HealerError):
    """The ledger could not be read or written."""
