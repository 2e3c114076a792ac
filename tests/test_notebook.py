"""The walk-through notebook runs top to bottom (its code cells, in order, in one namespace)."""

from __future__ import annotations

import json

import pytest

from conftest import ROOT

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def test_walkthrough_notebook_executes(spark, monkeypatch, capsys):
    notebook = json.loads((ROOT / "notebooks" / "walkthrough.ipynb").read_text())
    cells = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert len(cells) >= 5
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("HEALER_HOME", "unused")  # the notebook sets its own
    namespace: dict = {}
    for i, cell in enumerate(cells, 1):
        source = "".join(cell["source"])
        exec(compile(source, f"walkthrough.ipynb cell {i}", "exec"), namespace)
    assert namespace["outcome"].status == "proposed"
    assert namespace["rerun"].ok
    assert namespace["pr"].title.startswith("heal(revenue_by_category): ")
    assert "unit_price → item_price" in capsys.readouterr().out
