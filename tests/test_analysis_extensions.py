"""A recorder added in one file (tests/extensions/demo_recorder.py) runs from a qrun-style YAML on the
tiny market: its artifact is saved, the registry knows it, and the report renders its section."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

import qlib_ext
from qlib_ext.analysis import registry
from qlib_ext.schema import PRED_FILE

CONFIG = """
qlib_init:
  provider_uri: {data}
  region: cn
experiment_name: extension_demo
task:
  record:
    - class: DispersionRecord
      module_path: extensions.demo_recorder
      kwargs: {{rolling: 3}}
    - class: CrowdingRecord
      module_path: qlib_ext.analysis
"""


@pytest.fixture()
def demo_registered():
    yield
    registry.unregister("DispersionRecord")


def test_new_recorder_from_a_qrun_yaml_saves_and_renders(tiny_market, tmp_path, monkeypatch, demo_registered):
    from qlib.utils import init_instance_by_config
    from qlib.workflow import R

    from qlib_ext.analysis.inputs import market_frame
    from qlib_ext.analysis.report import build_report

    monkeypatch.chdir(tmp_path)
    cfg = yaml.safe_load(CONFIG.format(data=tiny_market))
    qlib_ext.init(cfg["qlib_init"]["provider_uri"], mlruns=tmp_path / "mlruns")
    mkt = market_frame("2023-06-01", "2024-03-27")
    pred = ((-mkt["ret_10"]).fillna(0) + np.random.default_rng(3).normal(0, 0.05, len(mkt))).rename("score").to_frame()
    with R.start(experiment_name=cfg["experiment_name"]):
        rec = R.get_recorder()
        rec.save_objects(**{PRED_FILE: pred})
        for record in cfg["task"]["record"]:     # as qrun's _exe_task builds and runs each record
            r = init_instance_by_config(record, recorder=rec, default_module="qlib.workflow.record_temp",
                                        try_kwargs={"model": None, "dataset": None})
            r.generate()
        from extensions.demo_recorder import FOLDER, TITLE, DispersionRecord, dispersion

        saved = {p.split("/", 1)[1] for p in rec.list_artifacts(FOLDER)}
        assert saved == set(DispersionRecord(rec).list())
        from qlib_ext.artifacts import load_artifact

        got = load_artifact(rec, "dispersion.csv", FOLDER)
        want = dispersion(pred["score"].sort_index())
        assert np.allclose(got["std"].to_numpy(), want["std"].to_numpy(), rtol=1e-12)
        assert rec.list_metrics()[f"{FOLDER}.mean_std"] == pytest.approx(want["std"].mean(), rel=1e-12)
        rid = rec.id

    entry = registry.get("DispersionRecord")
    assert (entry.folder, entry.title, entry.needs, entry.module_path) == (FOLDER, TITLE, ("signal",),
                                                                          "extensions.demo_recorder")
    assert registry.sections()[FOLDER] == TITLE
    signal_records = registry.default_records(run="signal", needs=("signal",))
    assert {"class": "DispersionRecord", "module_path": "extensions.demo_recorder"} in signal_records
    bare = build_report(rid, tmp_path / "bare.html").read_text()
    assert "Data:" not in bare                               # the run saved no config naming its dataset
    page = build_report(rid, tmp_path / "page.html", data=tiny_market).read_text()
    assert f'<h2 id="{FOLDER}">{TITLE}' in page and f'alt="{FOLDER}/dispersion"' in page
    assert "Data: synthetic market, preset tiny, seed 20240425" in page
    # sections in registry order: crowding (60) after the demo (45)
    assert page.index(f'<h2 id="{FOLDER}">') < page.index('<h2 id="crowding">')
