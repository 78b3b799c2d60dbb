"""The main job's GRU signal is the same in two processes (issue 18, reproducibility).

Two fresh Python processes, each with its own ``PYTHONHASHSEED`` (set/dict-of-str order) and its own
``OMP_NUM_THREADS`` (torch's default thread count), train the default ensemble's GRU half -- an
``Ensemble`` of the daily and weekly K-line GRUs, each ``Rolling`` with warm-started windows, models
from the ``fast`` preset (configs/models/fast.yaml, so its pinned ``num_threads``) shrunk to a few
thousand samples -- on the tiny market and pickle the combined signal and each member's scores.
The pickles must be byte-identical.  Without a fixed ``num_threads`` in the preset the nets follow
the process's thread count and the bytes differ (1 against 2 threads).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import pickle, sys
import qlib_ext
from qlib_ext.models import Ensemble
from qlib_ext.models.rolling import resolve_model_config

market, out = sys.argv[1], sys.argv[2]
qlib_ext.init(market, mlruns=out + "_mlruns")
seg = {"train": ["2021-01-04", "2022-03-31"], "valid": ["2022-04-15", "2022-09-30"],
       "test": ["2022-10-20", "2023-03-31"]}
handler_kw = dict(instruments="csiall", start_time=seg["train"][0], end_time=seg["test"][1],
                  fit_start_time=seg["train"][0], fit_end_time=seg["train"][1], label_horizon=10)
small = dict(hidden_size=16, n_epochs=2, batch_size=500, early_stop=1, sample_every=5,
             max_samples_per_epoch=3000, device="cpu", progress=False)

def member(name, handler, extra):
    model = resolve_model_config(name, "fast")
    model["kwargs"].update(small)  # the preset's seed and num_threads stay
    return {"name": name,
            "model": {"class": "Rolling", "module_path": "qlib_ext.models",
                      "kwargs": {"model": model, "step": 61, "label_horizon": 10, "warm_start": True,
                                 "warm_overrides": {"n_epochs": 1}}},
            "dataset": {"class": "SequenceDataset", "module_path": "qlib_ext.handlers",
                        "kwargs": {"handler": {"class": handler, "module_path": "qlib_ext.handlers",
                                               "kwargs": {**handler_kw, **extra}},
                                   "segments": seg}}}

class Task:  # every member has its own dataset; the ensemble only reads the segments
    segments = seg

ens = Ensemble([member("gru_daily", "DailyKline", {"window": 20}),
                member("gru_weekly", "WeeklyKline", {"n_weeks": 8})]).fit(Task())
assert len(ens.models["gru_daily"].windows) >= 2, ens.models["gru_daily"].windows
with open(out, "wb") as f:
    pickle.dump({"signal": ens.predict(Task(), "test"),
                 **{k: v["test"] for k, v in ens.member_predictions.items()}}, f, protocol=4)
"""


def _child_env(hashseed: str, omp_threads: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    env.update(PYTHONHASHSEED=hashseed, OMP_NUM_THREADS=omp_threads)
    return env


def test_gru_ensemble_signal_same_bytes_across_processes(tiny_market: Path, tmp_path: Path):
    runs = {("0", "1"): tmp_path / "a.pkl", ("12345", "2"): tmp_path / "b.pkl"}
    procs = {key: subprocess.Popen([sys.executable, "-c", CHILD, str(tiny_market), str(out)],
                                   env=_child_env(*key), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True)
             for key, out in runs.items()}
    for key, p in procs.items():
        log, _ = p.communicate(timeout=600)
        assert p.returncode == 0, f"child PYTHONHASHSEED={key[0]} OMP_NUM_THREADS={key[1]} failed:\n{log[-3000:]}"
    a, b = (out.read_bytes() for out in runs.values())
    assert len(a) > 10_000
    assert a == b, "the GRU ensemble's signal differs between processes (hash seed or thread count leaks in)"
