"""The benchmarks cannot rot: ``python -m tests.benchmarks --size smoke`` measures every
row (small sizes, about a minute on two cores) and writes each figure as a positive
number. It never asserts a speed: a smoke run's figures mean nothing, and what the
full size measures is for people to read (README, Performance).

Needs PostgreSQL, RabbitMQ and wrk (``bash deploy/ensure-wrk.sh``, run by tests/run).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.benchmarks.__main__ import ROWS

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _positive(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    """The smoke run's printed table and its JSON."""
    figures = tmp_path_factory.mktemp("benchmarks") / "figures.json"
    command = [sys.executable, "-m", "tests.benchmarks", "--size", "smoke"]
    done = subprocess.run(
        [*command, "--json", str(figures)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout, json.loads(figures.read_text())


def test_every_row_is_measured_with_positive_figures(smoke: tuple[str, dict[str, Any]]) -> None:
    _table, document = smoke
    rows = {row["key"]: row for row in document["rows"]}

    assert list(rows) == list(ROWS)
    for key, row in rows.items():
        assert row["error"] is None, (key, row["error"])
        assert row["figures"], key
        for figure in row["figures"]:
            assert _positive(figure["value"]), (key, figure)
        for target in row["targets"]:
            assert _positive(target["value"]), (key, target)
            assert isinstance(target["met"], bool), (key, target)
        for label, ratio in row["ratios"].items():
            assert _positive(ratio), (key, label, ratio)


def test_every_row_has_a_same_run_baseline_or_a_target(
    smoke: tuple[str, dict[str, Any]],
) -> None:
    _table, document = smoke
    rows = {row["key"]: row for row in document["rows"]}

    with_baselines = {k for k, row in rows.items() if any(f["baseline"] for f in row["figures"])}
    assert with_baselines == {"ingest", "worker", "pull", "replay", "scale"}
    # scale sizes a deployment (what a process, a core gives): figures, no goal.
    assert all(row["targets"] for key, row in rows.items() if key != "scale")
    assert not rows["scale"]["targets"]


def test_the_table_is_printed_and_the_run_described(smoke: tuple[str, dict[str, Any]]) -> None:
    table, document = smoke

    assert "billsync benchmarks (smoke size" in table
    for key in ROWS:
        assert f"│ {key} " in table, key
    assert document["command"].startswith("python -m tests.benchmarks --size smoke")
    assert document["date"]
    assert document["size"]["name"] == "smoke"
    machine = document["machine"]
    assert _positive(machine["cores"]) and machine["cpu_model"]
    assert set(machine["servers"]) == {"postgresql", "rabbitmq"}
