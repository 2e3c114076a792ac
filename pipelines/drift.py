"""Upstream changes that break pipelines; the helpers are ``healer.examples.drift``, installed with Healer."""

import sys

from healer.examples import drift as _drift

sys.modules[__name__] = _drift  # `from pipelines import drift` is the same module, private helpers included
