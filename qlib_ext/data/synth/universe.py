"""Static attributes of the synthetic instruments: codes, boards, industries, listing spans, shares."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Shenwan 2021 level-1 industries: code -> (Chinese, English). Codes are stored in the ``industry`` field.
SW_L1: dict[int, tuple[str, str]] = {
    110000: ("农林牧渔", "Agriculture"), 220000: ("基础化工", "Basic Chemicals"), 230000: ("钢铁", "Steel"),
    240000: ("有色金属", "Non-ferrous Metals"), 270000: ("电子", "Electronics"), 280000: ("汽车", "Automobiles"),
    330000: ("家用电器", "Household Appliances"), 340000: ("食品饮料", "Food & Beverage"),
    350000: ("纺织服饰", "Textiles & Apparel"), 360000: ("轻工制造", "Light Industry"),
    370000: ("医药生物", "Pharmaceuticals"), 410000: ("公用事业", "Utilities"), 420000: ("交通运输", "Transportation"),
    430000: ("房地产", "Real Estate"), 450000: ("商贸零售", "Commerce & Retail"), 460000: ("社会服务", "Social Services"),
    480000: ("银行", "Banks"), 490000: ("非银金融", "Non-bank Financials"), 510000: ("综合", "Conglomerates"),
    610000: ("建筑材料", "Building Materials"), 620000: ("建筑装饰", "Construction"),
    630000: ("电力设备", "Power Equipment"), 640000: ("机械设备", "Machinery"), 650000: ("国防军工", "Defense"),
    710000: ("计算机", "Computers"), 720000: ("传媒", "Media"), 730000: ("通信", "Telecommunications"),
    740000: ("煤炭", "Coal"), 750000: ("石油石化", "Petrochemicals"), 760000: ("环保", "Environmental"),
    770000: ("美容护理", "Beauty & Care"),
}

BOARDS = ("sh_main", "sz_main", "chinext", "star")


@dataclass
class Universe:
    """Per-instrument constants (arrays of length n) plus listing spans as calendar indices."""

    symbols: np.ndarray          # e.g. SH600000, SZ000001, SZ300001, SH688001
    board: np.ndarray            # index into BOARDS
    industry: np.ndarray         # SW L1 code
    industry_idx: np.ndarray     # 0..30
    list_idx: np.ndarray         # first session (calendar index)
    delist_idx: np.ndarray       # last session (calendar index; len(calendar)-1 when still listed)
    total_shares: np.ndarray
    float_shares: np.ndarray
    init_price: np.ndarray
    beta: np.ndarray
    idio_vol: np.ndarray
    base_turnover: np.ndarray
    q_stock: np.ndarray          # persistent part of the latent intraday trait
    jump_scale: np.ndarray       # small caps jump more often

    @property
    def n(self) -> int:
        return len(self.symbols)


def _codes(board: np.ndarray) -> np.ndarray:
    """Exchange-style codes per board, numbered in order of appearance."""
    prefix = {0: ("SH", 600000), 1: ("SZ", 1), 2: ("SZ", 300001), 3: ("SH", 688001)}
    out = np.empty(board.size, dtype=object)
    for b, (ex, first) in prefix.items():
        idx = np.flatnonzero(board == b)
        out[idx] = [f"{ex}{first + k:06d}" for k in range(idx.size)]
    return out


def build_universe(cfg: dict, days: pd.DatetimeIndex, rng: np.random.Generator) -> Universe:
    """Draw the instruments' constants; listings before ``star_open`` never go to the STAR board."""
    n, T = int(cfg["n_stocks"]), len(days)
    caps, ret, turn = cfg["caps"], cfg["returns"], cfg["turnover"]

    # listing: a share is listed on day 0, the rest IPO uniformly over the span (not in the last 20 days)
    n0 = int(round(n * cfg["listed_at_start"]))
    list_idx = np.zeros(n, dtype=np.int64)
    list_idx[n0:] = np.sort(rng.integers(1, max(2, T - 20), size=n - n0))
    # boards; STAR only for listings on/after its opening, ChiNext only after 2009-10-30
    shares = np.array([cfg["boards"][b] for b in BOARDS], dtype=float)
    board = rng.choice(len(BOARDS), size=n, p=shares / shares.sum())
    star_open = np.searchsorted(days, pd.Timestamp(cfg["star_open"]))
    chinext_open = np.searchsorted(days, pd.Timestamp("2009-10-30"))
    board[(board == 3) & (list_idx < star_open)] = 0
    board[(board == 2) & (list_idx < chinext_open)] = 1

    # sizes: log-normal total market cap at listing; IPOs come in smaller on average
    log_mcap = rng.normal(caps["log_mcap_median"], caps["log_mcap_sigma"], n) - 0.3 * (list_idx > 0)
    init_price = np.exp(rng.normal(np.log(caps["price_median"]), caps["price_sigma"], n)).round(2)
    init_price = np.maximum(init_price, 1.5)
    total_shares = np.round(np.exp(log_mcap) / init_price, -4)
    float_shares = np.round(total_shares * rng.uniform(caps["float_share_min"], 1.0, n), -4)
    size_z = (log_mcap - log_mcap.mean()) / log_mcap.std()

    # delisting: smaller caps more likely, at least a year after listing
    n_del = int(round(n * cfg["delist_share"]))
    delist_idx = np.full(n, T - 1, dtype=np.int64)
    p = np.exp(-1.2 * size_z)
    cand = np.flatnonzero(list_idx < T - 300)
    if n_del and cand.size:
        pick = rng.choice(cand, size=min(n_del, cand.size), replace=False, p=p[cand] / p[cand].sum())
        lo = list_idx[pick] + 250
        delist_idx[pick] = rng.integers(lo, T - 1)

    ind_codes = np.array(sorted(SW_L1))
    ind_p = rng.dirichlet(np.full(ind_codes.size, 4.0))
    industry_idx = rng.choice(ind_codes.size, size=n, p=ind_p)

    beta = np.clip(rng.normal(ret["beta_mean"], ret["beta_sigma"], n), 0.3, 1.9)
    idio_vol = ret["idio_vol_median"] * np.exp(ret["idio_vol_size_slope"] * size_z + rng.normal(0, ret["idio_vol_sigma"], n))
    base_turnover = turn["median"] * np.exp(turn["size_slope"] * size_z + rng.normal(0, turn["sigma"], n))
    q_stock = rng.standard_normal(n)
    jump_scale = np.exp(-0.35 * size_z)
    jump_scale /= jump_scale.mean()

    return Universe(
        symbols=_codes(board), board=board, industry=ind_codes[industry_idx], industry_idx=industry_idx,
        list_idx=list_idx, delist_idx=delist_idx, total_shares=total_shares, float_shares=float_shares,
        init_price=init_price, beta=beta, idio_vol=idio_vol, base_turnover=base_turnover, q_stock=q_stock,
        jump_scale=jump_scale,
    )


def limit_pct(universe: Universe, day: pd.Timestamp, cfg: dict) -> np.ndarray:
    """Daily price limit per instrument on ``day``: 10% main board, 20% STAR, ChiNext 20% after its reform."""
    pct = np.full(universe.n, 0.10)
    pct[universe.board == 3] = 0.20
    if day >= pd.Timestamp(cfg["chinext_reform"]):
        pct[universe.board == 2] = 0.20
    return pct
