"""Round trip at the pipeline level (issue 17): the tiny market exported to tushare-like files
(:func:`~qlib_ext.data.importers.export.export_tushare`), imported (:func:`~qlib_ext.data.importers.import_dataset`)
and run with the same job config (the ``tiny`` preset, whose windows are explicit) gives the native tiny run's
headline to the tolerance of the export's rounding, captioned with the imported dataset.

What the export loses, and so the tolerances below:

- stock prices (daily and minute) are rounded to 0.01 CNY, but the synthetic market's raw prices already sit
  on the 0.01 tick, so they come back bit-identical (``test_importers_roundtrip`` asserts it field by field),
  and so do the ``mf_*`` minute factors computed from them;
- index bars are rounded to 0.001 points.  CSI500 and CSI1000 stay above 700 points on the tiny market, so
  each session's benchmark return moves by at most 2 * 0.0005 / 700 = 1.4e-6;
- volume, amount and share counts go through tushare's units (lots, kCNY, 10^4 shares) and back: float32
  ulps (about 1e-7 relative) in ``vwap`` and ``mcap``, hence in the neutralised label the LightGBM learns, so
  a near-tied split may flip and a few predictions re-rank (bounded below by the signal's IC).

Index weights are exported daily (``weight_every=1``) for every index and minute bars for every stock: with
tushare's monthly snapshots or a few minute files the job would (rightly) run on other benchmark weights or
leave the minute model out, which is not rounding.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

from qlib_ext.data.importers import import_dataset
from qlib_ext.data.importers.export import export_tushare
from qlib_ext.data.panel import read_instruments
from qlib_ext.data.provenance import describe_dataset
from qlib_ext.pipeline.job import run_job

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

QUIET = {"log": lambda m: None}
#: The largest change of one session's benchmark return from rounding index bars to 0.001 points above 700.
BENCH_RETURN_ERROR = 2 * 0.0005 / 700
#: Annualised excess and excess max drawdown: a compounded sum of at most 181 sessions' errors, annualised
#: by 252/181 sessions: 252 * 1.4e-6 = 3.6e-4 in the worst case (all errors of one sign); headline prints 0.1%.
RETURN_TOL = 5e-4
#: IR = 252 * mean / (sqrt(252) * std) of the daily excess: a mean shift of 1.4e-6 over the tiny runs'
#: tracking error (about 2% a year) moves it by 252 * 1.4e-6 / 0.02 = 0.018 at most.
IR_TOL = 0.03
#: The signal's IC (and rank IC) over the backtest: its inputs are bit-identical, its label differs by float32
#: ulps; a re-ranked prediction or two moves the mean daily IC far less than this, a sixth of its sampling
#: error on tiny (IC 0.028 at an ICIR of 0.33 per day over 181 sessions: 0.006).
IC_TOL = 1e-3


@pytest.fixture(scope="module")
def runs(tiny_market, tmp_path_factory) -> dict:
    """The tiny job on a copy of the native market and on its export imported again (same preset)."""
    base = tmp_path_factory.mktemp("pipeline_rt")
    t0 = time.perf_counter()
    native = Path(shutil.copytree(tiny_market, base / "native"))   # the job writes mf_* and risk/ into it
    stocks = read_instruments(tiny_market)["instrument"].nunique()
    export_tushare(tiny_market, base / "tushare", units="tushare", weight_every=1,
                   weight_indexes=("csi300", "csi500", "csi1000"), minute_stocks=stocks)
    report = import_dataset(base / "tushare", base / "imported", progress=False)
    assert report.ok and not report.warnings, report.render()
    shutil.rmtree(base / "tushare")                                # 340 MB of minute files, no longer read
    t1 = time.perf_counter()
    res_native = run_job("tiny", data=native, out=base / "out_native", **QUIET)
    res_imported = run_job("tiny", data=base / "imported", out=base / "out_imported", **QUIET)
    print(f"pipeline round trip: export + import {t1 - t0:.0f} s, two tiny runs {time.perf_counter() - t1:.0f} s")
    return {"native": res_native, "imported": res_imported, "imported_data": base / "imported",
            "native_data": native}


def _side_by_side(runs: dict) -> str:
    cols = ["annualised excess", "IR", "excess max DD"]
    return pd.concat({k: runs[k]["headline"][cols] for k in ("native", "imported")}, axis=1).to_string()


def test_imported_run_gives_the_native_headline(runs):
    native, imported = runs["native"], runs["imported"]
    a, b = native["headline"], imported["headline"]
    assert list(a.index) == list(b.index) == ["CSI500", "CSI1000"] and list(a.columns) == list(b.columns)
    assert imported["decisions"] == native["decisions"], "the imported run degraded differently"
    table = _side_by_side(runs)
    for label in a.index:
        for col, tol in (("annualised excess", RETURN_TOL), ("excess max DD", RETURN_TOL), ("IR", IR_TOL)):
            assert b.loc[label, col] == pytest.approx(a.loc[label, col], abs=tol), f"{label} {col}:\n{table}"
    for key in ("ic", "rank_ic"):
        assert imported["signal"][key] == pytest.approx(native["signal"][key], abs=IC_TOL), key
    for res in (native, imported):                    # the returned frame is the saved table
        saved = pd.read_csv(Path(res["out"]) / "tables" / "headline.csv", index_col=0)
        pd.testing.assert_frame_equal(saved, res["headline"], check_names=False, check_dtype=False, rtol=1e-12)


def test_imported_headline_names_the_imported_dataset(runs):
    md = (Path(runs["imported"]["out"]) / "tables" / "headline.md").read_text()
    assert describe_dataset(runs["imported_data"]) in md
    assert "imported dataset" in md and "synthetic" not in md
    native_md = (Path(runs["native"]["out"]) / "tables" / "headline.md").read_text()
    assert "synthetic market, preset tiny" in native_md
