"""Where the example DAGs find the example pipelines (a module, not a DAG file)."""

from pathlib import Path

from healer.settings import Settings

# The pipeline repo: a git checkout holding healer.yml. Deployments point HEALER_EXAMPLE_REPO
# at theirs; by default the examples use pipelines/ next to this folder.
REPO = str(Settings.from_env().example_repo or Path(__file__).resolve().parents[1] / "pipelines")
