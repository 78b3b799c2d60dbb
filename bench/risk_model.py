"""Benchmark: risk-model build (time, peak RSS) and the regression step against a naive statsmodels loop.

    python bench/risk_model.py [--quick] [--data DIR] [--no-export]

Default data: the prebuilt default market at /tmp/default (1,500 stocks, 2012-2024) or ``--data``;
``--quick`` builds a small tiny-preset market (120 stocks, 2020-10..2024-03, one minute session) in a
temp dir.  The dataset is only read: the store and its Qlib export go to a temp dir.

1. ``build_risk`` end to end in a child process (so its peak RSS is its own), then
   ``export_riskmodel_root`` (Qlib's per-date pickles) timed separately in the same child.
2. In this process, the stages on the same data, and the peer: the per-day regression written the
   way a researcher would without us -- a pandas groupby over days, ``get_dummies`` for industries,
   the industry constraint substituted, ``statsmodels.WLS(...).fit()`` -- on the same exposures and
   returns.  Its factor returns are compared with ours (max abs difference is printed).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

CHILD = """
import json, resource, sys, time
from qlib_ext.risk import build_risk, export_riskmodel_root
t0 = time.time()
out = build_risk(sys.argv[1], out=sys.argv[2], progress=False, export_qlib=False)
build_s = time.time() - t0
export_s = None
if sys.argv[3] == "1":
    t0 = time.time()
    export_riskmodel_root(out)
    export_s = time.time() - t0
print(json.dumps({"build_s": build_s, "export_s": export_s,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def child_build(data: Path, out: Path, export: bool) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(data), str(out), "1" if export else "0"],
                          capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"build failed:\n{proc.stderr[-3000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["disk_mib"] = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
    return res


def naive_statsmodels(X: np.ndarray, ind: np.ndarray, codes: np.ndarray, mcap: np.ndarray,
                      ret: np.ndarray, dates: pd.DatetimeIndex, styles: list[str]) -> pd.DataFrame:
    """The peer: one statsmodels WLS per day on a long DataFrame, constraint by substitution."""
    import statsmodels.api as sm

    T, N, S = X.shape
    t_idx, i_idx = np.nonzero(np.isfinite(X).all(axis=2)[:-1])
    df = pd.DataFrame(X[t_idx, i_idx], columns=styles)
    df["industry"] = codes[ind[t_idx, i_idx]]
    df["cap"] = mcap[t_idx, i_idx].astype(float)
    df["ret_t"], df["ret_next"] = ret[t_idx, i_idx], ret[t_idx + 1, i_idx]
    df["date"] = dates[t_idx + 1]
    df = df.dropna(subset=["ret_t", "ret_next"])
    rows = {}
    for date, g in df.groupby("date"):
        if len(g) < 1 + len(codes) + S + 10:
            continue
        d = pd.get_dummies(g["industry"]).astype(float)
        c = (d.mul(g["cap"], axis=0)).sum()
        k = c.idxmax()
        others = [j for j in d.columns if j != k]
        design = pd.concat([pd.Series(1.0, index=g.index, name="country"),
                            d[others].sub(d[k].to_numpy()[:, None] * (c[others] / c[k]).to_numpy(), axis=1),
                            g[styles]], axis=1)
        fit = sm.WLS(g["ret_next"].astype(float), design.astype(float), weights=np.sqrt(g["cap"])).fit()
        f_ind = fit.params[others]
        f_ind[k] = -(c[others] * f_ind).sum() / c[k]
        rows[date] = pd.concat([fit.params[["country"]], f_ind.rename(lambda j: f"ind_{int(j)}"), fit.params[styles]])
    return pd.DataFrame(rows).T


def stages(data: Path) -> dict:
    """Time each stage of the build in this process; run the peer on the same inputs."""
    from qlib_ext.risk.build import industry_index, read_inputs
    from qlib_ext.risk.config import STYLES, RiskConfig, industry_factor
    from qlib_ext.risk.covariance import factor_covariance
    from qlib_ext.risk.descriptors import compute_descriptors
    from qlib_ext.risk.exposures import style_exposures
    from qlib_ext.risk.regression import factor_returns

    cfg, t = RiskConfig(), {}
    t0 = time.time()
    cal, instruments, p = read_inputs(data)
    codes, ind = industry_index(p["industry"])
    t["read_s"] = time.time() - t0
    t0 = time.time()
    desc = compute_descriptors(p["change"], p["mcap"], p["turnover"], cfg)
    t["descriptors_s"] = time.time() - t0
    t0 = time.time()
    st = style_exposures(desc, p["mcap"], ind, cfg)
    t["exposures_s"] = time.time() - t0
    del desc
    X = np.stack([st.pop(s) for s in STYLES], axis=2).astype(np.float32)
    t0 = time.time()
    reg = factor_returns(X, ind, p["mcap"], p["change"], len(codes))
    t["regression_s"] = time.time() - t0
    t0 = time.time()
    factor_covariance(reg.factor_returns, cfg)
    t["covariance_s"] = time.time() - t0
    t0 = time.time()
    peer = naive_statsmodels(X, ind, codes, p["mcap"], p["change"], cal, list(STYLES))
    t["peer_statsmodels_regression_s"] = time.time() - t0
    names = ["country"] + [industry_factor(c) for c in codes] + list(STYLES)
    ours = pd.DataFrame(reg.factor_returns, index=cal, columns=names).loc[peer.index, names]
    t["peer_max_abs_diff"] = float(np.nanmax(np.abs(ours.to_numpy() - peer[names].to_numpy(dtype=float))))
    t["regression_days"] = int(len(peer))
    t["stocks"], t["calendar_days"] = len(instruments), len(cal)
    t["stock_days"] = int(np.isfinite(X).all(axis=2).sum())
    return t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="a small tiny-preset market (under a minute)")
    ap.add_argument("--data", default=None, help="dataset to read (default /tmp/default)")
    ap.add_argument("--no-export", action="store_true", help="skip timing the Qlib riskmodel_root export")
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory(prefix="bench_risk_")
    base = Path(tmp.name)
    if args.data:
        data = Path(args.data)
    elif args.quick:
        from qlib_ext.data.synth import build_market, load_market_config

        data = build_market(load_market_config("tiny", minute_window=1), base / "tiny", progress=False)
    else:
        data = Path("/tmp/default")
        if not (data / "calendars" / "day.txt").exists():
            sys.exit("no dataset at /tmp/default: build one (qlib-ext data synth --preset default --out /tmp/default) "
                     "or pass --data")
    build = child_build(data, base / "risk", export=not args.no_export)
    print(f"built the store of {data} in {build['build_s']:.1f} s", file=sys.stderr)
    st = stages(data)
    figures = {**{k: round(v, 3) if isinstance(v, float) else v for k, v in build.items() if v is not None},
               **{k: (round(v, 3) if isinstance(v, float) and not k.endswith("diff") else v) for k, v in st.items()}}
    figures["stock_days_per_s_build"] = round(st["stock_days"] / build["build_s"], 1)
    table = pd.Series(figures, dtype=object).to_frame("value")
    print(table.to_string())
    ratios = {"statsmodels_wls_loop": round(st["peer_statsmodels_regression_s"] / st["regression_s"], 2)}
    print(json.dumps({"bench": "risk_model", "figures": figures, "ratios": ratios}))


if __name__ == "__main__":
    main()
