"""Seeded retail data; the generator is ``healer.examples.generate``, installed with Healer.

    python -m pipelines.generate --rows 100000 --out data/
"""

import sys

from healer.examples import generate as _generate

if __name__ == "__main__":
    sys.exit(_generate.main(prog="python -m pipelines.generate"))
sys.modules[__name__] = _generate  # `from pipelines.generate import write` is the same module
