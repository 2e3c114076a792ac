"""Fixtures shared by the GitHub and GitLab forge tests (each module keeps its own fake and forge).

A test module takes them with ``from forge_fixtures import ...``; ``fake`` (the fake forge behind
the server) is each module's own fixture.
"""

from __future__ import annotations

import pytest

from forgeserver import ForgeServer, example, make_remote, proposal, push_fix


@pytest.fixture(autouse=True)
def no_forge_settings(monkeypatch):
    """The developer's own forge settings must not leak into these tests."""
    for name in ("HEALER_FORGE", "HEALER_FORGE_REPO", "HEALER_REVIEWERS", "GITHUB_TOKEN", "GITHUB_API_URL",
                 "GITLAB_TOKEN", "GITLAB_API_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def remote(tmp_path):
    return make_remote(tmp_path)


@pytest.fixture
def server(fake):
    srv = ForgeServer(fake).start()
    yield srv
    srv.stop()


@pytest.fixture
def sleeps():
    return []


def pushed(remote, tmp_path, name="rule_fix", **overrides) -> dict:
    """Push the example's fix with Healer's workspace, as heal.py does before forge.open."""
    args = proposal(name, **overrides)
    push_fix(remote[1], tmp_path, args["branch"], example(name)["patch"].edits)
    return dict(args, remote=str(remote[0]))
