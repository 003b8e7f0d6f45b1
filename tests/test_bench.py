import pytest

from attnlab.bench import format_table, kind_config, loglog_slope, run_attention_bench
from attnlab.errors import UserError


def test_bench_measures_time_and_memory_of_each_kind(tmp_path):
    kinds = ["dense", "sparse-strided", "nystrom-64"]
    rows = run_attention_bench([128], kinds, repeats=1, plot=tmp_path / "plot.png")
    assert [row["kind"] for row in rows] == kinds
    for row in rows:
        assert row["status"] == "ok"
        assert row["ms"] > 0 and row["core_ms"] > 0 and row["peak_mib"] > 0
    assert (tmp_path / "plot.png").stat().st_size > 0
    assert "nystrom-64" in format_table(rows)


def test_runs_over_the_memory_budget_are_skipped_with_the_estimate():
    rows = run_attention_bench([4096], ["dense-reference"], memory_budget=2**30)
    assert rows[0]["status"].startswith("skipped (would need ")
    assert rows[0]["status"].endswith(" GiB)")


def test_loglog_slope_of_quadratic_growth_is_two():
    rows = [{"kind": "x", "n": n, "status": "ok", "peak_mib": 3.0 * n**2} for n in (8, 16, 64)]
    assert loglog_slope(rows, "x", "peak_mib") == pytest.approx(2.0)


def test_an_unknown_kind_is_refused_before_any_run():
    with pytest.raises(UserError, match="unknown benchmark kind"):
        kind_config("sparse-diagonal", 512)
