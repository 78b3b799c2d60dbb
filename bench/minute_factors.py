"""Benchmark: stock-days per second of the minute-factor batch engine (whole library) against peers.

    python bench/minute_factors.py [--quick] [--full DIR] [--start 2016-12-30] [--workers 2]

Peers, measured in the same run on the same stock-days:

* ``pandas``: a straightforward pandas implementation of the same 15 factors on a long
  (code, day, minute) frame -- vectorised ``groupby`` aggregations and transforms, no Python loop
  per group (``pandas_apply`` is the per-group ``groupby.apply`` style, timed on a small sample);
  its numbers are checked against the engine's before timing counts;
* ``qlib``: Qlib's own expression path, our custom operators (``MinSkew()`` ...) evaluated through
  ``D.features`` over the ``.1min.bin`` files, against our bin reader + engine on the same bins.

Then (unless ``--quick``) the whole build at full-market scale: ``build_minute_factors`` from the
synthetic stream of ``--full`` (default /tmp/bench_synth/full) over the sessions from ``--start``
(default 2016-12-30, the report's backtest window), writing ``mf_*`` fields into a scratch dataset
that links to the original's daily bins; wall time and peak RSS (parent and workers) of a child
process.  Targets: >= 100x pandas, full market under 20 minutes and 4 GiB on 2 cores.
``--quick`` uses a small synthetic market built on the spot (under a minute).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from qlib_ext.ops.batch import compute_factors
from qlib_ext.ops.library import MF_FIELDS
from qlib_ext.ops.sources import BinSource

ROOT = Path(__file__).resolve().parents[1]


# ---- the pandas peer ---------------------------------------------------------------------------
def long_frame(bars: dict[str, np.ndarray]) -> pd.DataFrame:
    """[S, D, 240] arrays -> the (code, day, minute) long frame a pandas user would start from."""
    s, d, m = bars["close"].shape
    idx = np.indices((s, d, m)).reshape(3, -1)
    df = pd.DataFrame({"code": idx[0], "day": idx[1], "minute": idx[2]})
    for f, v in bars.items():
        df[f] = v.reshape(-1).astype(np.float64)
    return df.dropna(subset=["open", "high", "low", "close", "volume", "amount"]).reset_index(drop=True)


def pandas_factors(df: pd.DataFrame) -> pd.DataFrame:
    """The 15 factors with groupby aggregations/transforms (same definitions as library.py)."""
    key = ["code", "day"]
    g = df.groupby(key, sort=False)
    ref = g["close"].shift(1).fillna(df["open"])
    r = (df["close"] - ref) / ref
    x = df.assign(r=r, r2=r**2, r3=r**3, r4=r**4, dn2=(r**2).where(r < 0, 0.0), mv=df["close"] - ref,
                  amp=(df["high"] - df["low"]) / ref, lr=np.log1p(r))
    x["amv"] = x["mv"].abs()
    first, last = x["minute"] < 30, x["minute"] >= 210
    x["v_first"], x["v_last"] = x["volume"].where(first, 0.0), x["volume"].where(last, 0.0)
    x["lr_first"], x["lr_last"] = x["lr"].where(first, 0.0), x["lr"].where(last, 0.0)
    x["n_first"], x["n_last"] = first.astype(float), last.astype(float)
    g = x.groupby(key, sort=False)
    for col in ("close", "volume", "r"):
        x[f"d_{col}"] = x[col] - g[col].transform("mean")
    x["pv"], x["vr"] = x["d_close"] * x["d_volume"], x["d_volume"] * x["d_r"]
    for col in ("close", "volume", "r"):
        x[f"q_{col}"] = x[f"d_{col}"] ** 2
    x["v2"] = x["volume"] ** 2
    traded = x["volume"] > 0
    x["score"] = (x["r"].abs() / np.sqrt(x["volume"])).where(traded)
    x["n_traded"] = traded.astype(float)
    g = x.groupby(key, sort=False)
    k_smart = np.ceil(0.2 * g["n_traded"].transform("sum") - 1e-6)
    smart = (g["score"].rank(ascending=False, method="min") <= k_smart) & traded
    k_top = np.ceil(0.1 * g["r"].transform("size") - 1e-6)
    heavy = g["volume"].rank(ascending=False, method="min") <= k_top
    x["a_s"], x["v_s"] = x["amount"].where(smart, 0.0), x["volume"].where(smart, 0.0)
    x["a_t"], x["v_t"] = x["amount"].where(traded, 0.0), x["volume"].where(traded, 0.0)
    x["lr_top"] = x["lr"].where(heavy, 0.0)
    s = x.groupby(key, sort=False).agg(
        n=("r", "size"), r2=("r2", "sum"), r3=("r3", "sum"), r4=("r4", "sum"), dn2=("dn2", "sum"),
        pv=("pv", "sum"), vr=("vr", "sum"), q_close=("q_close", "sum"), q_volume=("q_volume", "sum"),
        q_r=("q_r", "sum"), lr_first=("lr_first", "sum"), lr_last=("lr_last", "sum"),
        n_first=("n_first", "sum"), n_last=("n_last", "sum"), V=("volume", "sum"), v_first=("v_first", "sum"),
        v_last=("v_last", "sum"), mv=("mv", "sum"), amv=("amv", "sum"), a_s=("a_s", "sum"), v_s=("v_s", "sum"),
        a_t=("a_t", "sum"), v_t=("v_t", "sum"), amp=("amp", "mean"), v2=("v2", "sum"), lr_top=("lr_top", "sum"),
    )
    nz = lambda v: v.where(v != 0)  # noqa: E731  (0 denominators -> NaN, as the engine)
    return pd.DataFrame({
        "mf_rvol": np.sqrt(s["r2"]),
        "mf_rskew": np.sqrt(s["n"]) * s["r3"] / nz(s["r2"]) ** 1.5,
        "mf_rkurt": s["n"] * s["r4"] / nz(s["r2"]) ** 2,
        "mf_downvol": s["dn2"] / nz(s["r2"]),
        "mf_corr_pv": s["pv"] / nz(np.sqrt(s["q_close"] * s["q_volume"])),
        "mf_corr_vr": s["vr"] / nz(np.sqrt(s["q_volume"] * s["q_r"])),
        "mf_ret_open30": np.expm1(s["lr_first"]).where(s["n_first"] > 0),
        "mf_ret_close30": np.expm1(s["lr_last"]).where(s["n_last"] > 0),
        "mf_vshare_open30": s["v_first"] / nz(s["V"]),
        "mf_vshare_close30": s["v_last"] / nz(s["V"]),
        "mf_trend": s["mv"] / nz(s["amv"]),
        "mf_smart": (s["a_s"] / nz(s["v_s"])) / (s["a_t"] / nz(s["v_t"])) - 1,
        "mf_amp": s["amp"],
        "mf_vhhi": s["v2"] / nz(s["V"]) ** 2,
        "mf_topvol_ret": np.expm1(s["lr_top"]),
    })


def pandas_apply(df: pd.DataFrame) -> pd.DataFrame:
    """The per-group style most research code starts from: one function per stock-day, ``groupby.apply``."""
    def one(day: pd.DataFrame) -> pd.Series:
        ref = day["close"].shift(1).fillna(day["open"])
        r = day["close"] / ref - 1
        s2 = (r**2).sum()
        v = day["volume"]
        first, last = day["minute"] < 30, day["minute"] >= 210
        traded = day[v > 0]
        score = (r[v > 0].abs() / np.sqrt(traded["volume"]))
        smart = traded.loc[score.sort_values(ascending=False).index[: math.ceil(0.2 * len(traded) - 1e-6)]]
        heavy = r.loc[v.sort_values(ascending=False).index[: math.ceil(0.1 * len(day) - 1e-6)]]
        ratio = lambda a, b: a / b if b else np.nan  # noqa: E731
        return pd.Series({
            "mf_rvol": np.sqrt(s2), "mf_rskew": ratio(np.sqrt(len(r)) * (r**3).sum(), s2**1.5),
            "mf_rkurt": ratio(len(r) * (r**4).sum(), s2**2), "mf_downvol": ratio((r[r < 0] ** 2).sum(), s2),
            "mf_corr_pv": day["close"].corr(v), "mf_corr_vr": v.corr(r),
            "mf_ret_open30": (1 + r[first]).prod() - 1, "mf_ret_close30": (1 + r[last]).prod() - 1,
            "mf_vshare_open30": ratio(v[first].sum(), v.sum()), "mf_vshare_close30": ratio(v[last].sum(), v.sum()),
            "mf_trend": ratio(day["close"].iloc[-1] - day["open"].iloc[0], (day["close"] - ref).abs().sum()),
            "mf_smart": ratio(smart["amount"].sum(), smart["volume"].sum()) / ratio(traded["amount"].sum(), traded["volume"].sum()) - 1,
            "mf_amp": ((day["high"] - day["low"]) / ref).mean(), "mf_vhhi": ratio(((v / v.sum()) ** 2).sum(), 1.0),
            "mf_topvol_ret": (1 + heavy).prod() - 1,
        })
    return df.groupby(["code", "day"], sort=False)[list(df.columns.drop(["code", "day"]))].apply(one)


def check_same(ours: dict[str, np.ndarray], peer: pd.DataFrame) -> float:
    """Largest |ours - pandas| over the factors, in units of each factor's cross-sectional spread.

    The engine runs in float32, the peer in float64: expect ~1e-5; ``mf_smart`` may flip a minute at
    its top-k threshold under float32 rounding, so it gets a looser bound.
    """
    worst = 0.0
    for f in MF_FIELDS:
        mine = ours[f][peer.index.get_level_values(0), peer.index.get_level_values(1)]
        theirs = peer[f].to_numpy()
        diff = float(np.nanmax(np.abs(mine - theirs)) / np.nanstd(theirs))
        if diff > (1e-2 if f == "mf_smart" else 1e-3) or (np.isnan(mine) != np.isnan(theirs)).any():
            raise AssertionError(f"pandas peer disagrees with the engine on {f}: {diff:.2e} of the spread")
        worst = max(worst, diff)
    return worst


def best_of(fn, repeat: int = 3) -> float:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return min(out)


# ---- the Qlib expression path ------------------------------------------------------------------
def qlib_path(root: Path, symbols: list[str], start, end, mlruns: Path) -> float:
    from qlib.data import D

    import qlib_ext
    from qlib_ext.ops import qlib_ops
    from qlib_ext.ops.library import LIBRARY

    qlib_ext.init(root, mlruns=mlruns, kernels=1, expression_cache=None, dataset_cache=None)
    qlib_ops._CACHE.clear()
    fields = [f"{f.op}()" for f in LIBRARY.values()]
    t = time.perf_counter()
    df = D.features(symbols, fields, start_time=start, end_time=end)
    secs = time.perf_counter() - t
    assert df.notna().to_numpy().mean() > 0.5
    return secs


# ---- the full-market build in a child process --------------------------------------------------
CHILD = """
import json, resource, sys, time
from qlib_ext.ops.build import build_minute_factors
t = time.time()
fields = build_minute_factors(sys.argv[1], source="stream", start=sys.argv[2], workers=int(sys.argv[3]), progress=False)
secs = time.time() - t
rss = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(json.dumps({"seconds": secs, "peak_rss_mib": rss / 1024, "fields": len(fields)}))
"""


def scratch_copy(src: Path, dst: Path) -> Path:
    """A dataset that links to ``src``'s daily bins (read-only use) and gets its own mf_* files."""
    for sub in ("calendars", "instruments", "meta"):
        shutil.copytree(src / sub, dst / sub)
    for inst in (src / "features").iterdir():
        (dst / "features" / inst.name).mkdir(parents=True)
        for f in inst.glob("*.day.bin"):
            if not f.name.startswith("mf_"):
                os.symlink(f, dst / "features" / inst.name / f.name)
    return dst


def full_build(src: Path, start: str, workers: int, scratch: Path) -> dict:
    from qlib_ext.ops.sources import StreamSource

    root = scratch_copy(src, scratch / "full")
    s = StreamSource(root)
    d0 = int(s.days.searchsorted(pd.Timestamp(start)))
    sp = s.spans
    stock_days = int((np.minimum(sp["last"], len(s.days) - 1) - np.maximum(sp["first"], d0) + 1).clip(lower=0).sum())
    proc = subprocess.run([sys.executable, "-c", CHILD, str(root), start, str(workers)], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res |= {"stock_days": stock_days, "sessions": len(s.days) - d0, "stocks": len(sp), "workers": workers}
    res["stock_days_per_s"] = stock_days / res["seconds"]
    return res


# ---- main --------------------------------------------------------------------------------------
def quick_market(out: Path) -> Path:
    from qlib_ext.data.synth import build_market, load_market_config

    cfg = load_market_config("tiny", name="bench_mf", n_stocks=80, start="2023-05-04", end="2024-03-29",
                             minute_window="all", index_bands={"csi300": 8, "csi500": 12, "csi1000": 24})
    return build_market(cfg, out, progress=False)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="a small market built on the spot; no full build")
    ap.add_argument("--full", default="/tmp/bench_synth/full", help="the full-preset market (read only)")
    ap.add_argument("--minute-data", default="/tmp/default", help="a market with .1min.bin files for the peers")
    ap.add_argument("--start", default="2016-12-30", help="first session of the full build")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_mf_"))
    try:
        data = quick_market(tmp / "market") if args.quick else Path(args.minute_data)
        src = BinSource(data)
        days = src.layout.covered()
        d0, d1 = int(days[0]), int(days[-1]) + 1
        n_sym = 40 if args.quick else 200
        symbols = src.instruments[:n_sym]
        t = time.perf_counter()
        bars = src.bars(symbols, d0, d1)
        read_s = time.perf_counter() - t
        n_sd = int(np.isfinite(bars["close"]).any(-1).sum())
        eng_s = best_of(lambda: compute_factors(bars, device="cpu"))
        ours = compute_factors(bars, device="cpu")

        sample = {f: v[:, : max(1, 4000 // len(symbols))] for f, v in bars.items()}   # ~4,000 stock-days
        sample_sd = int(np.isfinite(sample["close"]).any(-1).sum())
        df = long_frame(sample)
        pd_s = best_of(lambda: pandas_factors(df), repeat=1)
        agree = check_same(ours, pandas_factors(df))
        eng_sample_s = best_of(lambda: compute_factors(sample, device="cpu"))
        small = df[df["code"] < max(1, 200 // sample["close"].shape[1])]           # ~200 stock-days
        small_sd = small.groupby(["code", "day"]).ngroups
        apply_s = best_of(lambda: pandas_apply(small), repeat=1)

        q_s = qlib_path(data, symbols, src.days[d0], src.days[d1 - 1], tmp / "mlruns")
        ours_bins_s = read_s + eng_s

        rows = {
            "engine (numpy, whole library)": (n_sd, eng_s),
            "engine + bin reader": (n_sd, ours_bins_s),
            "qlib D.features, our ops": (n_sd, q_s),
            "engine on the pandas sample": (sample_sd, eng_sample_s),
            "pandas groupby (15 factors)": (sample_sd, pd_s),
            "pandas groupby.apply (15 factors)": (small_sd, apply_s),
        }
        table = pd.DataFrame([{"path": k, "stock_days": n, "seconds": s, "stock_days_per_s": n / s}
                              for k, (n, s) in rows.items()]).set_index("path")
        figures = {"engine_stock_days_per_s": n_sd / eng_s, "engine_with_reader_stock_days_per_s": n_sd / ours_bins_s,
                   "qlib_ops_stock_days_per_s": n_sd / q_s, "pandas_groupby_stock_days_per_s": sample_sd / pd_s,
                   "pandas_apply_stock_days_per_s": small_sd / apply_s, "pandas_max_diff_in_spreads": float(f"{agree:.2g}")}
        ratios = {"pandas": pd_s / eng_sample_s,
                  "pandas_apply": (apply_s / small_sd) / (eng_sample_s / sample_sd),
                  "qlib": q_s / ours_bins_s}
        if not args.quick and Path(args.full).exists():
            res = full_build(Path(args.full), args.start, args.workers, tmp)
            table.loc["full build (stream, write mf_*)"] = [res["stock_days"], res["seconds"], res["stock_days_per_s"]]
            figures |= {f"full_{k}": v for k, v in res.items()}
            ratios["target_full_20min"] = 1200 / res["seconds"]
        print(table.round(1).to_string())
        print(f"\npandas peer agrees with the engine to {agree:.1e} of each factor's spread")
        print(json.dumps({"bench": "minute_factors",
                          "figures": {k: (float(f"{v:.4g}") if isinstance(v, (int, float, np.floating)) and math.isfinite(v) else v)
                                      for k, v in figures.items()},
                          "ratios": {k: round(float(v), 2) for k, v in ratios.items()}}))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
