"""healer.settings: every HEALER_* variable registered once, parsed strictly, documented in the README."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from healer import settings as settings_module
from healer.errors import ConfigError
from healer.llm_client import LLMConfig
from healer.policy import Policy
from healer.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
# A HEALER_* name, but not the tail of AIRFLOW__HEALER__* (Airflow's own config) or of a longer word.
NAME = re.compile(r"(?<![A-Za-z0-9_])HEALER_[A-Z0-9_]*[A-Z0-9]")
DIRECT_READ = re.compile(r"""(?:environ\.get|getenv|env\.get)\(\s*["'](HEALER_[A-Z0-9_]+)""")


def _sources():
    for folder in ("healer", "dags"):  # benchmarks/ may use private names of its own
        yield from sorted((ROOT / folder).rglob("*.py"))


def test_every_healer_variable_in_the_code_is_registered():
    registered = {spec.name for spec in settings_module.specs()}
    unregistered = sorted({f"{name} ({path.relative_to(ROOT)})" for path in _sources()
                           for name in NAME.findall(path.read_text()) if name not in registered})
    assert not unregistered, ("register these in healer/settings.py (see its docstring): "
                              + ", ".join(unregistered))


def test_no_module_reads_a_healer_variable_around_settings():
    direct = sorted(f"{path.relative_to(ROOT)}: {name}" for path in _sources()
                    if path.name != "settings.py" for name in DIRECT_READ.findall(path.read_text()))
    assert not direct, "read these through Settings.from_env(): " + ", ".join(direct)


def test_the_readme_table_is_generated_from_settings():
    table = settings_module.readme_table(ROOT / "README.md")
    assert table == settings_module.markdown(), "regenerate it: python -m healer.settings --write-readme"
    for spec in settings_module.specs():
        assert f"| `{spec.name}` |" in table


def test_write_readme_replaces_only_the_table(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n{settings_module.README_START}\n| stale |\n{settings_module.README_END}\nafter\n")
    assert settings_module.write_readme(readme) is True
    text = readme.read_text()
    assert text.startswith("# x\n\nbefore\n") and text.endswith(f"{settings_module.README_END}\nafter\n")
    assert "| stale |" not in text and "| `HEALER_HOME` | `./.healer` |" in text
    assert settings_module.write_readme(readme) is False  # already up to date
    readme.write_text("# no markers\n")
    with pytest.raises(ConfigError, match="settings markers"):
        settings_module.write_readme(readme)


def test_the_command_prints_the_table():
    done = subprocess.run([sys.executable, "-m", "healer.settings", "--markdown"], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == settings_module.markdown()


def test_values_are_parsed_by_type():
    env = {"HEALER_HOME": "/tmp/h", "HEALER_SAMPLE_ROWS": "1_000", "HEALER_SHADOW": "off", "HEALER_LLM": "ON",
           "HEALER_SANDBOX": "bwrap", "HEALER_FORGE": "GitLab", "HEALER_REVIEWERS": "@alice, bob acme/sre",
           "HEALER_LEASE_WAIT": "0", "HEALER_SPARK_LOG_LEVEL": "warn", "HEALER_LLM_DEADLINE": " 30 ",
           "HEALER_MIN_CONFIDENCE": ""}
    settings = Settings.from_env(env)
    assert settings.home == Path("/tmp/h") and settings.sample_rows == 1000
    assert settings.shadow is False and settings.llm is True
    assert settings.sandbox == "bubblewrap" and settings.forge == "gitlab" and settings.spark_log_level == "WARN"
    assert settings.reviewers == ("alice", "bob", "acme/sre")
    assert settings.lease_wait == 0.0 and settings.llm_deadline == 30.0
    assert settings.min_confidence == 0.5  # empty means the default
    assert Settings.from_env({}) == Settings()
    assert Settings().resolved_ledger_url().endswith("/.healer/ledger.db")
    assert Settings.from_env({"HEALER_LEDGER_URL": "postgresql://x"}).resolved_ledger_url() == "postgresql://x"


@pytest.mark.parametrize("name, raw, expected", [
    ("HEALER_SAMPLE_ROWS", "many", "expected a whole number >= 1"),
    ("HEALER_SAMPLE_ROWS", "0", "expected a whole number >= 1"),
    ("HEALER_LLM_RETRIES", "-1", "expected a whole number >= 0"),
    ("HEALER_LEASE_SECONDS", "0", "expected a number of seconds > 0"),
    ("HEALER_LEASE_WAIT", "nan", "expected a number of seconds >= 0"),
    ("HEALER_MIN_CONFIDENCE", "high", "expected a number >= 0"),
    ("HEALER_SHADOW", "maybe", "expected on or off (1/0, true/false, yes/no)"),
    ("HEALER_SANDBOX", "docker", "expected one of bubblewrap, process"),
    ("HEALER_SPARK_LOG_LEVEL", "LOUD", "expected one of ALL, DEBUG"),
])
def test_a_bad_value_is_one_line_naming_the_variable(name, raw, expected):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({name: raw})
    message = str(caught.value)
    assert message.startswith(f"{name}={raw!r}: {expected}") and "\n" not in message


def test_secrets_are_never_shown():
    token = "t-secret-123"
    settings = Settings.from_env({"HEALER_API_TOKEN": token, "HEALER_LEDGER_URL": "postgresql://u:pw@db/x"})
    assert settings.api_token == token
    assert token not in repr(settings) and "pw@db" not in repr(settings)
    assert token not in settings_module.markdown()


def test_policy_and_llm_config_come_from_settings_and_share_their_defaults(monkeypatch):
    assert Policy.from_settings(Settings()) == Policy()
    defaults = LLMConfig(None, None)
    from_settings = LLMConfig.from_env()
    assert (from_settings.model, from_settings.max_tokens, from_settings.rounds, from_settings.token_budget,
            from_settings.deadline_s, from_settings.timeout_s, from_settings.max_retries, from_settings.backoff_s,
            from_settings.max_reply_bytes) == \
        (defaults.model, defaults.max_tokens, defaults.rounds, defaults.token_budget, defaults.deadline_s,
         defaults.timeout_s, defaults.max_retries, defaults.backoff_s, defaults.max_reply_bytes)
    monkeypatch.setenv("HEALER_SAMPLE_ROWS", "123")
    monkeypatch.setenv("HEALER_SANDBOX_ALLOW_MODEL_IN_PROCESS", "yes")
    policy = Policy.from_env()
    assert policy.sample_rows == 123 and policy.allow_model_in_process is True
    monkeypatch.setenv("HEALER_SHADOW", "sometimes")
    with pytest.raises(ConfigError, match="^HEALER_SHADOW='sometimes'"):
        Policy.from_env()
