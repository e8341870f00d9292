"""bench/sql_stage writes the same records through each variant (their row counts checked): it cannot rot
unseen."""

from __future__ import annotations

import logging
import os

import pytest


def test_each_variant_exports_every_record_alone_and_beside_a_busy_thread(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bench import sql_stage

    medians = sql_stage.main(2_000, 1)  # each export asserts it committed every record
    assert set(medians) == {(variant, busy) for variant in sql_stage.VARIANTS for busy in (False, True)}
    assert all(value > 0 for value in medians.values())
    out = capsys.readouterr().out.splitlines()
    rows = [line for line in out if line.endswith("ms per 1,000 |")]
    assert [row.split(" | ")[0] for row in rows] == [f"| {variant}" for variant in sql_stage.VARIANTS]
    # The commit beside another campaign's rows, both ways (each export asserts its row count).
    assert [line.split(" | ")[0] for line in out if line.endswith(" s |")] == [
        f"| old rows deleted {how}" for how in sql_stage.DELETES]
    # Nothing of the process's is left changed for the tests after this one.
    assert logging.root.manager.disable == logging.NOTSET
    assert "AIRFLOW_CONN_BENCH_REPORTS_DB" not in os.environ
