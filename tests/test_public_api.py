"""``import healer``: a short sorted __all__, every name importable, and a light import."""

from __future__ import annotations

import json
import subprocess
import sys

import healer


def test_all_is_sorted_and_every_name_imports():
    assert healer.__all__ == sorted(healer.__all__)
    assert set(healer.__all__) <= set(dir(healer))
    for name in healer.__all__:
        assert getattr(healer, name) is not None, name
    assert healer.Ledger is __import__("healer.ledger", fromlist=["Ledger"]).Ledger
    assert healer.self_healing.__module__ == "healer.airflow.decorators"


def test_an_unknown_name_is_an_attribute_error():
    try:
        healer.no_such_name
    except AttributeError as error:
        assert "no_such_name" in str(error)
    else:
        raise AssertionError("healer.no_such_name resolved")


def test_import_healer_imports_neither_spark_nor_airflow():
    code = ("import sys, json, healer\n"
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'pyspark', 'airflow', 'sqlalchemy', 'git'})\n"
            "from healer import heal, Settings\n"
            "after = sorted({m.split('.')[0] for m in sys.modules} & {'airflow'})\n"
            "print(json.dumps([heavy, after]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [[], []]  # the heal module loads, Airflow still does not


def test_heal_is_the_module_and_calls_its_function(monkeypatch):
    from healer import heal
    import healer.heal as heal_module
    from healer.heal import Outcome

    assert heal is heal_module and heal.Outcome is Outcome is healer.Outcome
    calls = []
    monkeypatch.setattr(heal_module, "heal", lambda *args, **kwargs: calls.append((args, kwargs)) or "healed")
    assert heal("repo", "revenue", dry_run=True) == "healed"
    assert calls == [(("repo", "revenue"), {"dry_run": True})]
