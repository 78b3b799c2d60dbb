"""Benchmark: added wall time of the analysis recorders of one enhancement run (all seven).

    python bench/analysis_recorders.py --artifacts RUN_ARTIFACT_DIR [--data data/qlib_ext_default]
        [--benchmark csi500] [--risk-store DATA/risk]

Copies ``pred.pkl``, ``optim/{weights,diagnostics}.pkl`` and Qlib's portfolio report and positions of a
finished enhancement run (its MLflow artifact folder) into a fresh run of a temporary sqlite store,
then times each recorder's
``generate()`` in the order a qrun runs them; the first one pays the shared market read
(``analysis.inputs.market_frame``: one ``D.features`` call, cached for the rest).  The last line is
the JSON record.  The peer is the issue's target: all recorders under 2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd

import qlib_ext
from qlib_ext.schema import (
    ARTIFACTS,
    DIAGNOSTICS_FILE,
    PORT_REPORT_FILE,
    POSITIONS_FILE,
    PRED_FILE,
    WEIGHTS_FILE,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifacts", required=True, help="artifact folder of an enhancement run")
    ap.add_argument("--data", default="data/qlib_ext_default")
    ap.add_argument("--benchmark", default="csi500")
    ap.add_argument("--risk-store", default=None, help="default: <data>/risk")
    args = ap.parse_args()
    from qlib.workflow import R

    from qlib_ext.analysis import (
        AttributionRecord,
        CrowdingRecord,
        HoldingsProfileRecord,
        MarketReviewRecord,
        QuantileRecord,
        StyleProfileRecord,
        StyleTimingRecord,
    )

    src = Path(args.artifacts)
    with tempfile.TemporaryDirectory(prefix="bench_analysis_") as tmp:
        qlib_ext.init(args.data, mlruns=Path(tmp) / "mlruns")
        with R.start(experiment_name="bench_analysis"):
            rec = R.get_recorder()
            rec.save_objects(**{PRED_FILE: pd.read_pickle(src / PRED_FILE)})
            optim = {n: pd.read_pickle(src / ARTIFACTS.OPTIM / n) for n in (WEIGHTS_FILE, DIAGNOSTICS_FILE)
                     if (src / ARTIFACTS.OPTIM / n).exists()}
            rec.save_objects(artifact_path=ARTIFACTS.OPTIM, **optim)
            for name in (PORT_REPORT_FILE, POSITIONS_FILE):
                folder, file = name.rsplit("/", 1)
                rec.save_objects(artifact_path=folder, **{file: pd.read_pickle(src / name)})
            store = args.risk_store or str(Path(args.data) / "risk")
            risk = {"benchmark": args.benchmark, "risk_store": store}
            times = {}
            for cls, kw in ((StyleProfileRecord, {}), (QuantileRecord, {}), (CrowdingRecord, {}),
                            (HoldingsProfileRecord, risk), (AttributionRecord, risk), (StyleTimingRecord, risk),
                            (MarketReviewRecord, {"risk_store": store})):
                t0 = time.perf_counter()
                cls(rec, **kw).generate()
                times[cls.__name__] = round(time.perf_counter() - t0, 2)
    times["total"] = round(sum(times.values()), 2)
    for k, v in times.items():
        print(f"{k:24s} {v:8.2f} s")
    print(json.dumps({"bench": "analysis_recorders", "data": args.data, "seconds": times}))


if __name__ == "__main__":
    main()
