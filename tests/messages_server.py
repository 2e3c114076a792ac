"""The local Messages API server lives in ``benchmarks/healbench/messages_server.py``, shared with
HealBench's trap scenarios; the tests import it from here by its old name."""

from benchmarks.healbench.messages_server import (  # noqa: F401 -- re-exported
    Hang, MessagesServer, Raw, Trickle, error, fix, tool_answer, usage)
