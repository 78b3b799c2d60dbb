"""The HTML report (`qlib-ext report`): one self-contained page per run or sweep, read from the MLflow
store only; it parses, embeds every figure of the run, and references nothing outside itself."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from analysis_backtest import log_backtest, make_backtest

import qlib_ext
from qlib_ext.analysis import AttributionRecord, MarketReviewRecord, StyleTimingRecord
from qlib_ext.analysis.report import build_report
from qlib_ext.cli import main
from qlib_ext.risk import build_risk
from qlib_ext.schema import ARTIFACTS


class Page(HTMLParser):
    """Collects images, links, tables and headings; fails on unbalanced tags."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self) -> None:
        super().__init__()
        self.images, self.refs, self.stack, self.tables, self.text = [], [], [], 0, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images.append(a)
        for key in ("src", "href"):
            if key in a and tag != "img":
                self.refs.append(a[key])
        if tag in ("script", "link", "iframe", "object", "embed"):
            self.refs.append(f"<{tag}>")
        if tag == "table":
            self.tables += 1
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"unbalanced </{tag}> after {self.stack[-3:]}"
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    assert page.stack == [], page.stack
    return page


@pytest.fixture(scope="module")
def runs(tiny_market, tmp_path_factory):
    """Two runs of one experiment with the three recorders of this issue's second half."""
    from qlib.workflow import R

    tmp = tmp_path_factory.mktemp("report")
    mlruns = tmp / "mlruns"
    qlib_ext.init(tiny_market, mlruns=mlruns)
    store = build_risk(tiny_market, out=tmp / "risk", export_qlib=False, progress=False)
    ids = []
    import os

    cwd = os.getcwd()
    os.chdir(tmp)  # MLflow's default artifact root is ./mlruns
    try:
        bt = make_backtest(seed=0)
        for seed in (0, 1):    # two runs of the same backtest (the page only reads what they saved)
            with R.start(experiment_name="report_exp", recorder_name=f"seed{seed}"):
                rec = R.get_recorder()
                log_backtest(rec, bt)
                AttributionRecord(rec, risk_store=str(store)).generate()
                StyleTimingRecord(rec, risk_store=str(store)).generate()
                MarketReviewRecord(rec, end="2024-03-28", risk_store=str(store)).generate()
                rec.save_objects(config={"qlib_init": {"provider_uri": str(tiny_market)}, "market": "csiall",
                                         "task": {"model": {"class": "LGBModel"}},
                                         "port_analysis_config": {"backtest": {"start_time": "2023-06-01",
                                                                               "end_time": "2024-03-28"}}})
                ids.append(rec.id)
    finally:
        os.chdir(cwd)
    return {"mlruns": mlruns, "ids": ids, "tmp": tmp}


def _pngs(rec) -> list[str]:
    out = []
    for folder in (ARTIFACTS.ATTRIBUTION, ARTIFACTS.STYLE_TIMING, ARTIFACTS.MARKET_REVIEW):
        out += [p for p in rec.list_artifacts(folder) if p.endswith(".png")]
    return out


def test_single_run_page_embeds_every_figure_and_nothing_external(runs, tmp_path):
    from qlib.workflow import R

    out = build_report(runs["ids"][1], tmp_path / "one.html", uri=str(runs["mlruns"]))
    page = parse(out)
    rec = R.get_recorder(recorder_id=runs["ids"][1], experiment_name="report_exp")
    pngs = _pngs(rec)
    assert len(pngs) >= 7
    assert len(page.images) == len(pngs)
    assert {img["alt"] for img in page.images} == {p.rsplit(".", 1)[0] for p in pngs}
    assert all(img["src"].startswith("data:image/png;base64,") for img in page.images)
    local = Path(rec.get_local_dir()) / "artifacts"
    import base64

    for img in page.images:   # each embedded image is the artifact's bytes
        assert base64.b64decode(img["src"].split(",", 1)[1]) == (local / f"{img['alt']}.png").read_bytes()
    assert all(r.startswith("#") for r in page.refs), [r for r in page.refs if not r.startswith("#")]
    text = " ".join(page.text)
    for want in ("Return attribution (figures 25-26)", "Style timing", "Market review", "seed1",
                 str(runs["ids"][1]), "2023-06-01 .. 2024-03-28", "LGBModel", "pyqlib"):
        assert want in text, want
    # tables are HTML tables; the headline number shown is the recorder's metric
    assert page.tables >= 8
    ann = rec.list_metrics()["attribution.ann_active"]
    assert f"{ann:.4g}" in text


def test_experiment_side_by_side_sweep_and_cli(runs, tmp_path, capsys):
    # the experiment name: its latest run by default, every run with --all
    assert main(["report", "report_exp", "--out", str(tmp_path / "latest.html"), "--mlruns", str(runs["mlruns"])]) == 0
    latest = " ".join(parse(tmp_path / "latest.html").text)
    assert "report_exp/seed1" in latest and "report_exp/seed0" not in latest
    assert main(["report", "report_exp", "--all", "--out", str(tmp_path / "all.html"),
                 "--mlruns", str(runs["mlruns"])]) == 0
    both = parse(tmp_path / "all.html")
    assert "report_exp/seed0" in " ".join(both.text) and len(both.images) == 2 * len(parse(tmp_path / "latest.html").images)
    # a sweep file: cells labelled by name, tracking URI relative to the file
    db = runs["mlruns"] / "mlflow.db"
    sweep = tmp_path / "sweep" / "sweep.json"
    sweep.parent.mkdir()
    sweep.write_text(json.dumps({"tracking_uri": f"sqlite:///{db}", "cells": [
        {"cell": "floor=1.0", "experiment": "report_exp", "recorder_id": runs["ids"][0]},
        {"cell": "floor=0.8", "recorder_id": runs["ids"][1]}]}))
    assert main(["report", str(sweep.parent), "--out", str(tmp_path / "sweep.html")]) == 0
    text = " ".join(parse(tmp_path / "sweep.html").text)
    assert "floor=1.0" in text and "floor=0.8" in text
    # one folder per cell, each with run.json
    cells = tmp_path / "cells"
    for k, rid in enumerate(runs["ids"]):
        (cells / f"c{k}").mkdir(parents=True)
        (cells / f"c{k}" / "run.json").write_text(json.dumps({"cell": f"cell{k}", "recorder_id": rid,
                                                              "tracking_uri": f"sqlite:///{db}"}))
    assert main(["report", str(cells), "--out", str(tmp_path / "cells.html")]) == 0
    assert "cell1" in " ".join(parse(tmp_path / "cells.html").text)
    # unknown target: a clear error, no page
    assert main(["report", "no_such_thing", "--out", str(tmp_path / "x.html"), "--mlruns", str(runs["mlruns"])]) == 2
    assert "neither an experiment" in capsys.readouterr().err and not (tmp_path / "x.html").exists()


def test_report_saved_as_an_artifact_of_its_run(runs, tmp_path):
    from qlib.workflow import R

    rid = runs["ids"][0]
    build_report(rid, tmp_path / "r.html", uri=str(runs["mlruns"]), save_artifact=True)
    rec = R.get_recorder(recorder_id=rid, experiment_name="report_exp")
    assert f"{ARTIFACTS.REPORT}/report.html" in rec.list_artifacts(ARTIFACTS.REPORT)
    saved = Path(rec.get_local_dir()) / "artifacts" / ARTIFACTS.REPORT / "report.html"
    assert saved.read_text(encoding="utf-8") == (tmp_path / "r.html").read_text(encoding="utf-8")
    # a later page of the run does not embed the saved page in itself
    again = parse(build_report(rid, tmp_path / "r2.html", uri=str(runs["mlruns"])))
    assert len(again.images) == len(_pngs(rec)) and "report.html" not in " ".join(again.text)


def _meta(root: Path, dataset: dict | None = None, report: dict | None = None) -> Path:
    (root / "meta").mkdir(parents=True)
    if dataset is not None:
        (root / "meta" / "dataset.json").write_text(json.dumps(dataset))
    if report is not None:
        (root / "meta" / "import_report.json").write_text(json.dumps(report))
    return root


def test_provenance_says_what_the_data_are(tiny_market, tmp_path):
    from qlib_ext.analysis.report import dataset_caption
    from qlib_ext.data.provenance import dataset_identity, describe_dataset, read_provenance

    tiny = describe_dataset(tiny_market)
    assert tiny.startswith("synthetic market, preset tiny, seed 20240425") and read_provenance(tiny_market).synthetic
    real = _meta(tmp_path / "real", {"kind": "imported", "source": "/fixtures/realdata", "start": "2021-01-04",
                                     "end": "2024-03-29", "n_instruments": 2308})
    text = describe_dataset(real)
    assert text == f"imported dataset {real.resolve()} from /fixtures/realdata (2021-01-04..2024-03-29, 2308 instruments)"
    plain = _meta(tmp_path / "plain", report={"source": "/tushare", "mode": "augment"})
    assert describe_dataset(plain) == f"Qlib dataset {plain.resolve()}, augmented from /tushare"
    bare = tmp_path / "bare"
    bare.mkdir()
    assert "origin not recorded" in describe_dataset(bare)
    for d in (real, plain, bare):        # never "synthetic" on data our synthetic market did not write
        assert "synthetic" not in describe_dataset(d) and not read_provenance(d).synthetic
        assert dataset_caption({"qlib_init": {"provider_uri": str(d)}}) == describe_dataset(d)
    assert dataset_caption({"qlib_init": {"provider_uri": str(tmp_path / "gone")}}) == ""
    # the identity changes when the dataset is rewritten in place
    before = dataset_identity(real)
    (real / "meta" / "dataset.json").write_text(json.dumps({"kind": "imported", "source": "elsewhere"}))
    assert dataset_identity(real) != before


def test_page_names_the_data_and_what_the_run_could_not_do(runs, tmp_path):
    rid = runs["ids"][0]
    plain = parse(build_report(rid, tmp_path / "p.html", uri=str(runs["mlruns"])))
    text = " ".join(plain.text)
    assert "Data: synthetic market, preset tiny, seed 20240425" in text
    assert "What this run could not do" not in text
    lines = ["minute model left out of the ensemble: 1 of 120 stocks has minute bars",
             "market review: CSI All Share (SH000985) absent, its NAV left out"]
    page = parse(build_report(rid, tmp_path / "d.html", uri=str(runs["mlruns"]), decisions=lines[:1]))
    text = " ".join(page.text)
    assert "What this run could not do" in text and lines[0] in text
    # or from decisions.json beside the runs file (the pipeline's report/ folder)
    folder = tmp_path / "job"
    folder.mkdir()
    (folder / "runs.json").write_text(json.dumps({"tracking_uri": f"sqlite:///{runs['mlruns'] / 'mlflow.db'}",
                                                  "cells": [{"cell": "CSI500 enhanced", "recorder_id": rid}]}))
    (folder / "decisions.json").write_text(json.dumps({"decisions": lines}))
    text = " ".join(parse(build_report(str(folder / "runs.json"), tmp_path / "j.html", decisions=lines[:1])).text)
    assert all(text.count(line) == 1 for line in lines)
