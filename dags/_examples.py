"""Where the example DAGs find the example pipelines (a module, not a DAG file)."""

import os
from pathlib import Path

# The pipeline repo: a git checkout holding healer.yml. Deployments point HEALER_EXAMPLE_REPO
# at theirs; by default the examples use pipelines/ next to this folder.
REPO = os.environ.get("HEALER_EXAMPLE_REPO", str(Path(__file__).resolve().parents[1] / "pipelines"))
