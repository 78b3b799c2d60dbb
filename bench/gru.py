"""Benchmark: training and inference samples/s of GRUModel's trainer against Qlib's GRU and a bare loop.

    python bench/gru.py [--quick] [--rounds 3] [--threads 1,2] [--hidden 64] [--layers 2] [--window 40] [--batch 2000]

One synthetic market (random-walk daily bars, ~3% suspended stock-days, 7 input channels), the same
net size, sequence length and batch for all three, in the same run:

* ours   ``qlib_ext.models.trainer.train_net`` / ``predict_net`` (what ``GRUModel.fit`` / ``predict``
         run): windows gathered per batch from one float32 panel (``SequencePanel``), normalised,
         masked, then forward + backward + Adam;
* qlib   ``qlib.contrib.model.pytorch_gru_ts.GRU.train_epoch`` on the ``DataLoader`` its ``fit``
         builds (``TSDataSampler`` with ``ffill+bfill``, ``ConcatDataset`` with unit weights,
         ``num_workers=0`` on this 2-core box); inference as its ``predict`` loop;
* bare   ``nn.GRU`` + linear head on one pre-built random batch (no data pipeline): the ceiling.

Each is timed over the same number of samples after one warm-up batch, in ``--rounds`` interleaved
rounds (median reported).  torch's intra-op threads
are set per run (``--threads``): on a loaded machine 2 threads spin against each other and can be
an order of magnitude slower than 1.  CUDA: the same three on ``cuda`` when a GPU is present,
otherwise skipped with a line saying so.  The last line is the JSON record; ratios are ours / peer.
"""

from __future__ import annotations

import argparse
import json
import logging
import time

import numpy as np
import pandas as pd
import torch
from torch import nn

from qlib_ext.device import cuda_available
from qlib_ext.handlers.sequence import FIELDS, SequencePanel
from qlib_ext.models.nets import GRUNet
from qlib_ext.models.trainer import TrainConfig, predict_net, train_net


def synthetic_frame(n_stocks: int, n_days: int, seed: int = 0) -> pd.DataFrame:
    """Daily bars (datetime, instrument) with a few suspended days (NaN prices, volume 0) and a label."""
    rng = np.random.default_rng(seed)
    ret = rng.normal(0, 0.02, (n_days, n_stocks))
    close = 10 * np.exp(np.cumsum(ret, axis=0))
    openp = close * np.exp(rng.normal(0, 0.005, close.shape))
    high = np.maximum(openp, close) * (1 + np.abs(rng.normal(0, 0.01, close.shape)))
    low = np.minimum(openp, close) * (1 - np.abs(rng.normal(0, 0.01, close.shape)))
    vwap = (high + low + close) / 3
    vol = rng.lognormal(13, 0.5, close.shape)
    susp = rng.random(close.shape) < 0.03
    bars = np.stack([openp, high, low, close, vwap, vol], -1)
    bars[susp, :5] = np.nan
    bars[susp, 5] = 0.0
    dates = pd.bdate_range("2020-01-01", periods=n_days, name="datetime")
    inst = pd.Index([f"SH{600000 + i}" for i in range(n_stocks)], name="instrument")
    idx = pd.MultiIndex.from_product([dates, inst])
    df = pd.DataFrame(bars.reshape(-1, 6).astype(np.float32), index=idx, columns=list(FIELDS))
    df["mask"] = (~susp).reshape(-1).astype(np.float32)  # Qlib's side gets the same 7 channels
    df["LABEL0"] = rng.normal(0, 1, len(df)).astype(np.float32)
    return df


def bench_ours(df, window, hidden, layers, batch, n_samples, device) -> dict:
    panel = SequencePanel.from_frame(df[list(FIELDS)], df["LABEL0"], window=window)
    sampler = panel.sampler(panel.dates[window], None, need_label=True)
    torch.manual_seed(0)
    net = GRUNet(7, hidden, layers)
    cfg = TrainConfig(n_epochs=1, batch_size=batch, early_stop=1, max_samples_per_epoch=batch, seed=0)
    train_net(net, sampler, None, cfg, device=device, progress=False)  # warm-up batch
    cfg.max_samples_per_epoch = n_samples
    t0 = time.perf_counter()
    train_net(net, sampler, None, cfg, device=device, progress=False)
    train_s = time.perf_counter() - t0
    sub = sampler.subset(np.arange(min(n_samples, len(sampler))))
    predict_net(net, sub.subset(np.arange(min(batch, len(sub)))), batch, device)
    t0 = time.perf_counter()
    predict_net(net, sub, batch, device)
    infer_s = time.perf_counter() - t0
    return {"train_sps": n_samples / train_s, "infer_sps": len(sub) / infer_s}


def bench_qlib(df, window, hidden, layers, batch, n_samples, device) -> dict:
    from qlib.contrib.model.pytorch_gru_ts import GRU
    from qlib.data.dataset import TSDataSampler
    from qlib.model.utils import ConcatDataset
    from torch.utils.data import DataLoader, SubsetRandomSampler

    dates = df.index.get_level_values("datetime").unique()
    data = df[[*FIELDS, "mask", "LABEL0"]]
    ts = TSDataSampler(data, dates[window], dates[-1], step_len=window, fillna_type="ffill+bfill")
    model = GRU(d_feat=7, hidden_size=hidden, num_layers=layers, batch_size=batch, n_jobs=0,
                GPU=0 if device.startswith("cuda") else -1, seed=0)
    rows = np.random.default_rng(0).permutation(len(ts))[:n_samples]
    ds = ConcatDataset(ts, np.ones(len(ts)))
    warm = DataLoader(ds, batch_size=batch, sampler=SubsetRandomSampler(rows[:batch]), num_workers=0)
    model.train_epoch(warm)
    loader = DataLoader(ds, batch_size=batch, sampler=SubsetRandomSampler(rows), num_workers=0, drop_last=True)
    t0 = time.perf_counter()
    model.train_epoch(loader)
    train_s = time.perf_counter() - t0
    n_train = (len(rows) // batch) * batch
    test_loader = DataLoader(torch.utils.data.Subset(ts, np.sort(rows)), batch_size=batch, num_workers=0)
    model.GRU_model.eval()
    t0 = time.perf_counter()
    with torch.no_grad():
        for data in test_loader:
            model.GRU_model(data[:, :, :-1].to(model.device).float()).cpu()
    infer_s = time.perf_counter() - t0
    return {"train_sps": n_train / train_s, "infer_sps": len(rows) / infer_s}


def bench_bare(window, hidden, layers, batch, n_samples, device) -> dict:
    torch.manual_seed(0)
    rnn = nn.GRU(7, hidden, layers, batch_first=True).to(device)
    head = nn.Linear(hidden, 1).to(device)
    opt = torch.optim.Adam([*rnn.parameters(), *head.parameters()], lr=1e-3)
    x = torch.randn(batch, window, 7, device=device)
    y = torch.randn(batch, device=device)
    n_batches = max(n_samples // batch, 1)

    def step():
        out, _ = rnn(x)
        loss = ((head(out[:, -1]).squeeze(-1) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(n_batches):
        step()
    _sync(device)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with torch.no_grad():
        for _ in range(n_batches):
            out, _ = rnn(x)
            head(out[:, -1]).cpu()
    infer_s = time.perf_counter() - t0
    return {"train_sps": n_batches * batch / train_s, "infer_sps": n_batches * batch / infer_s}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def interleaved(df, device: str, size: dict, rounds: int) -> dict:
    """Each measure ``rounds`` times in rotation, the median samples/s of each: on a shared 2-core machine
    a single pass of one then the next mostly measures who ran in a quiet minute."""
    runs: dict[str, list] = {"ours": [], "qlib": [], "bare": []}
    for _ in range(rounds):
        runs["ours"].append(bench_ours(df, device=device, **size))
        runs["qlib"].append(bench_qlib(df, device=device, **size))
        runs["bare"].append(bench_bare(device=device, **size))
    return {name: {k: float(np.median([r[k] for r in rs])) for k in rs[0]} for name, rs in runs.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="4,000 samples per measure (about a minute)")
    ap.add_argument("--threads", default="1,2", help="torch intra-op thread counts to run, e.g. 1,2")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--window", type=int, default=40)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--samples", type=int, default=None, help="samples per measure (default 10,000)")
    ap.add_argument("--rounds", type=int, default=None,
                    help="interleaved rounds (ours, qlib, bare, ours, ...), median reported (default 3; --quick 1)")
    args = ap.parse_args()
    logging.getLogger("qlib").setLevel(logging.WARNING)
    n_samples = args.samples or (4000 if args.quick else 10000)
    rounds = args.rounds or (1 if args.quick else 3)
    df = synthetic_frame(200 if args.quick else 400, args.window + 120)
    size = dict(window=args.window, hidden=args.hidden, layers=args.layers, batch=args.batch, n_samples=n_samples)
    runs = [("cpu", int(t)) for t in args.threads.split(",")]
    if cuda_available():
        runs.append(("cuda", torch.get_num_threads()))
    else:
        print("cuda: skipped (torch.cuda.is_available() is False on this machine)")
    figures, ratios = {}, {}
    for device, threads in runs:
        torch.set_num_threads(threads)
        key = f"{device}_t{threads}" if device == "cpu" else device
        fig = interleaved(df, device, size, rounds)
        figures[key] = fig
        ratios[key] = {f"{kind}_vs_{peer}": fig["ours"][f"{kind}_sps"] / fig[peer][f"{kind}_sps"]
                       for kind in ("train", "infer") for peer in ("qlib", "bare")}
        for name, f in fig.items():
            print(f"{key:8s} {name:5s} train {f['train_sps']:9.0f} samples/s   infer {f['infer_sps']:9.0f} samples/s")
        print(f"{key:8s} ratios " + "  ".join(f"{k} {v:.2f}" for k, v in ratios[key].items()))
    print(json.dumps({"bench": "gru", "size": size, "rounds": rounds, "cuda": cuda_available(), "figures": figures, "ratios": ratios}))


if __name__ == "__main__":
    main()
