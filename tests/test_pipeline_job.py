"""`qlib-ext run --preset tiny` end to end: market adopted, minute factors, risk store, rolling signal,
two recorded backtests, headline table (table 11 layout) that matches the runs' own Qlib reports; a
rerun skips every stage."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qlib_ext.cli import main


@pytest.mark.e2e
@pytest.mark.slow
def test_run_tiny_end_to_end(tiny_market, tmp_path, capsys):
    from mlflow.tracking import MlflowClient

    data = tmp_path / "data"
    shutil.copytree(tiny_market, data, copy_function=os.symlink)  # files linked: the fixture stays untouched
    out = tmp_path / "out"
    assert main(["run", "--preset", "tiny", "--data", str(data), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Table 11 layout" in printed and "report (real market)" in printed

    timings = json.loads((out / "timings.json").read_text())
    stages = {s["stage"]: s for s in timings["stages"]}
    assert {"market", "minute_factors", "risk", "signal", "backtest_csi500", "backtest_csi1000"} <= set(stages)
    assert not stages["risk"]["cached"] and (data / "risk" / "meta.json").is_file()
    assert any((data / "features").glob("*/mf_rskew.day.bin")) or any((data / "features").glob("*/mf_*.day.bin"))
    assert timings["total_seconds"] < 600

    headline = pd.read_csv(out / "tables" / "headline.csv", index_col=0)
    assert list(headline.index) == ["CSI500", "CSI1000"]
    assert headline.loc["CSI1000", "report (real market): annualised excess"] == pytest.approx(0.259)
    runs = json.loads((out / "runs.json").read_text())
    client = MlflowClient(tracking_uri=runs["tracking_uri"])
    for name, label in (("csi500", "CSI500"), ("csi1000", "CSI1000")):
        rid = runs["backtests"][name]["recorder_id"]
        assert client.get_run(rid).info.status == "FINISHED"
        report = pd.read_pickle(client.download_artifacts(rid, "portfolio_analysis/report_normal_1day.pkl",
                                                          str(tmp_path / name)))
        e = report["return"] - report["bench"] - report["cost"]
        assert report.index[0] == pd.Timestamp("2023-07-03") and report.index[-1] == pd.Timestamp("2024-03-28")
        assert headline.loc[label, "annualised excess"] == pytest.approx(np.prod(1 + e) ** (252 / len(e)) - 1,
                                                                         rel=1e-9)
    pred = pd.read_pickle(out / "stages" / "signal" / "pred.pkl")
    days = pred.index.get_level_values("datetime")
    assert days.min() == pd.Timestamp("2023-07-03") and days.max() >= pd.Timestamp("2024-03-28")
    assert not (out / "tmp").exists() or list((out / "tmp").iterdir()) == []
    if runs.get("report"):
        assert Path(runs["report"]).stat().st_size > 10_000

    # a rerun with nothing changed skips every stage
    assert main(["run", "--preset", "tiny", "--data", str(data), "--out", str(out)]) == 0
    again = {s["stage"]: s for s in json.loads((out / "timings.json").read_text())["stages"]}
    assert all(s["cached"] for s in again.values()), again
    pd.testing.assert_frame_equal(pd.read_csv(out / "tables" / "headline.csv", index_col=0), headline)
