"""Shenwan level-1 industry per stock and day from point-in-time classification spans, as one SW2021 scheme.

Shenwan moved from SW2014 (28 L1) to SW2021 (31 L1) on 2021-07-30.  Most SW2014 L1 codes live on in
SW2021 under the same code (220000 化工 -> 基础化工, 350000 纺织服装 -> 纺织服饰, 450000 商业贸易 ->
商贸零售, 460000 休闲服务 -> 社会服务, 630000 电气设备 -> 电力设备) and are kept; a code that SW2021 does
not have (210000 采掘, split into 740000 煤炭 / 750000 石油石化) takes the stock's next SW2021 code, a
look-ahead before 2021-07-30 (counted in the report).  Days with no classification in force take
the nearest one (carried forward, else back: look-ahead, counted).  Codes may be given as 6 digits
(``480000``) or as tushare's Shenwan index codes (``801780.SI``), which are mapped by ``l1_name``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..synth.universe import SW_L1
from .daily import StockGrid
from .derive import ffill, fill_both
from .indexes import _spans_frame
from .report import ImportReport
from .sources import read_table
from .validate import check_spans, flag_rows

#: SW2014 level-1 codes whose name differs in SW2021 (or that SW2021 dropped): code -> (Chinese, English).
SW2014_L1 = {210000: ("采掘", "Mining"), 220000: ("化工", "Chemicals"), 350000: ("纺织服装", "Textiles & Apparel"),
             450000: ("商业贸易", "Commerce & Trade"), 460000: ("休闲服务", "Leisure Services"),
             630000: ("电气设备", "Electrical Equipment")}
_BY_NAME = {**{v[0]: k for k, v in SW2014_L1.items()}, **{v[0]: k for k, v in SW_L1.items()}}


def _l1_codes(df: pd.DataFrame, name: str, report: ImportReport) -> np.ndarray:
    """6-digit L1 codes as floats; tushare ``801xxx.SI`` codes mapped through ``l1_name``."""
    code = df["l1_code"].astype("string").str.strip() if "l1_code" in df else pd.Series(pd.NA, index=df.index)
    six = code.str.fullmatch(r"\d{6}").fillna(False).to_numpy(bool)
    out = np.where(six, pd.to_numeric(code.where(six), errors="coerce"), np.nan)
    if "l1_name" in df:
        by_name = df["l1_name"].astype("string").str.strip().map(_BY_NAME).astype("float64").to_numpy()
        out = np.where(six, out, by_name)
    flag_rows(report, "error", "industry_code", name, np.isnan(out), lambda i: f"l1_code {code.iloc[i]!r} is not a "
              "6-digit Shenwan L1 code and l1_name does not name one", df["_row"].to_numpy(),
              lambda i: f"{df['ts_code'].iloc[i]} {df['in_date'].iloc[i]}", "l1_code")
    return out


def load_industry(path: Path, grid: StockGrid, report: ImportReport) -> tuple[np.ndarray, dict[str, dict]]:
    """(T, N) SW2021 L1 code per stock-day (NaN outside listing) and the code -> names table."""
    name = path.name
    df = read_table(path, ("ts_code", "in_date"), ("out_date", "l1_code", "l1_name", "l1_name_en"), report)
    if "l1_code" not in df and "l1_name" not in df:
        report.error("missing_column", name, "needs l1_code (or l1_name)", field="l1_code")
    report.raise_if_failed()
    df = _spans_frame(df, name, report, "ts_code")
    df["_l1"] = _l1_codes(df, name, report)
    check_spans(report, name, df, ["ts_code"], "classification")
    report.raise_if_failed()
    df = df.sort_values(["_code", "_in"]).reset_index(drop=True)
    sw21 = df["_l1"].where(df["_l1"].isin(list(SW_L1)))
    nxt = sw21.groupby(df["_code"]).bfill()
    remap = df["_l1"].notna() & sw21.isna() & nxt.notna()
    df["_l1"] = np.where(remap, nxt, df["_l1"])

    T, N = grid.shape
    j = pd.Index(grid.stocks).get_indexer(df["_code"])
    a = grid.days.searchsorted(df["_in"].to_numpy(), "left")
    b = grid.days.searchsorted(df["_out"].to_numpy(), "right")
    ok = (j >= 0) & (a < b)
    ev = np.full((T + 1, N), np.nan, dtype=np.float32)
    ev[b[ok], j[ok]] = -1.0                               # span ends (exclusive) ...
    ev[a[ok], j[ok]] = df["_l1"].to_numpy()[ok]           # ... unless another starts there
    pan = ffill(ev)[:-1]
    pan = np.where(pan < 0, np.nan, pan)
    listed = grid.listed
    gaps = listed & np.isnan(pan)
    pan = np.where(listed, fill_both(pan), np.nan)
    report.stats["industry: SW2014 spans mapped to the next SW2021 code"] = int(remap[ok].sum())
    report.stats["industry: listed days without a classification in force (filled from the nearest)"] = int(gaps.sum())
    codes = sorted({int(c) for c in np.unique(pan[np.isfinite(pan)])})
    names = {}
    for c in codes:
        zh, en = SW_L1.get(c) or SW2014_L1.get(c) or (str(df.loc[df["_l1"] == c, "l1_name"].iloc[-1])
                                                      if "l1_name" in df else str(c), "")
        names[str(c)] = {"name": zh, "name_en": en, "scheme": "SW2021" if c in SW_L1 else "SW2014"}
    return pan, names
