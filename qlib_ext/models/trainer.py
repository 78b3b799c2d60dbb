"""The training loop of ``GRUModel``: batches gathered from a ``SequenceSampler``, early stopping on rank IC.

Pure torch + NumPy (no Qlib): ``train_net`` fits one net for one seed and returns its best
``state_dict`` (on the CPU) and the per-epoch history; ``predict_net`` scores a sampler;
``daily_rank_ic`` is the validation metric (mean over days of the Spearman correlation).
Reproducible on the CPU: the caller seeds torch, NumPy and Python (``seed_everything``); batch order
and per-epoch sampling come from a NumPy ``Generator`` seeded with the seed.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["TrainConfig", "daily_rank_ic", "deterministic", "predict_net", "seed_everything", "train_net"]


@dataclass
class TrainConfig:
    """Knobs of one training run (see ``GRUModel`` for their meaning)."""

    n_epochs: int = 20
    lr: float = 1e-3
    batch_size: int = 2000
    early_stop: int = 5
    loss: str = "mse"
    max_samples_per_epoch: int | None = None
    seed: int = 0


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


@contextlib.contextmanager
def deterministic():
    """``torch.use_deterministic_algorithms(True)`` inside the block, the previous setting restored after."""
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


def daily_rank_ic(pred: np.ndarray, label: np.ndarray, day: np.ndarray) -> float:
    """Mean over days of the Spearman correlation of pred and label (days with >= 3 finite pairs; ties averaged)."""
    import pandas as pd

    ok = np.isfinite(pred) & np.isfinite(label)
    if ok.sum() < 3:
        return float("nan")
    df = pd.DataFrame({"d": day[ok], "p": pred[ok], "y": label[ok]})
    g = df.groupby("d")
    df["p"], df["y"] = g["p"].rank(), g["y"].rank()
    ic = df.groupby("d")[["p", "y"]].corr().xs("p", level=1)["y"]
    counts = g.size()
    ic = ic[counts.reindex(ic.index) >= 3].dropna()
    return float(ic.mean()) if len(ic) else float("nan")


def _loss(pred: torch.Tensor, y: torch.Tensor, kind: str, day: torch.Tensor | None) -> torch.Tensor:
    if kind == "mse":
        return torch.mean((pred - y) ** 2)
    # "ic": minus the mean over the batch's days of the Pearson correlation (days of >= 3 samples)
    _, inv, counts = torch.unique(day, return_inverse=True, return_counts=True)
    n = counts.to(pred.dtype)

    def demean(v):
        mean = torch.zeros_like(n).index_add_(0, inv, v) / n
        return v - mean[inv]

    pc, yc = demean(pred), demean(y)
    cov = torch.zeros_like(n).index_add_(0, inv, pc * yc)
    vp = torch.zeros_like(n).index_add_(0, inv, pc * pc)
    vy = torch.zeros_like(n).index_add_(0, inv, yc * yc)
    corr = cov / torch.sqrt(vp * vy + 1e-12)
    keep = counts >= 3
    return -corr[keep].mean() if bool(keep.any()) else torch.mean((pred - y) ** 2)


def _epoch_rows(n: int, day: np.ndarray, cfg: TrainConfig, rng: np.random.Generator) -> np.ndarray:
    """Rows of one epoch: a random subset (``max_samples_per_epoch``), shuffled; day-grouped for the IC loss."""
    rows = rng.permutation(n)
    if cfg.max_samples_per_epoch is not None and cfg.max_samples_per_epoch < n:
        rows = rows[: int(cfg.max_samples_per_epoch)]
    if cfg.loss == "ic":
        days = np.unique(day[rows])
        rank = np.empty(int(days.max()) + 1, dtype=np.int64)
        rank[days] = rng.permutation(len(days))
        rows = rows[np.argsort(rank[day[rows]], kind="stable")]
    return rows


def train_net(net: torch.nn.Module, train, valid, cfg: TrainConfig, device: str = "cpu",
              progress: bool = True, on_epoch: Callable[[int, dict], None] | None = None,
              desc: str = "GRU") -> tuple[dict, dict]:
    """Fit ``net`` on ``train`` (a ``SequenceSampler`` of labelled samples); early stop on ``valid`` rank IC.

    Returns (best state_dict on the CPU, history ``{"train": [loss...], "valid": [rank IC...]}``).
    Without a valid sampler the last epoch's weights are kept.  Raises ``FloatingPointError``
    naming the epoch, batch and dates when a loss is not finite.
    """
    from tqdm.auto import tqdm

    if cfg.loss not in ("mse", "ic"):
        raise ValueError(f"loss must be 'mse' or 'ic', got {cfg.loss!r}")
    if len(train) == 0:
        raise ValueError(f"train_net ({desc}): the train sampler is empty, nothing to fit (GRUModel.fit names the "
                         f"reason: qlib_ext.models.gru.why_unlabelled)")
    rng = np.random.default_rng(cfg.seed)
    net.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    y_all = train.label
    history: dict[str, list] = {"train": [], "valid": []}
    best_state, best_ic, best_epoch = None, -np.inf, -1
    bar = tqdm(range(cfg.n_epochs), desc=desc, disable=not progress, leave=False)
    for epoch in bar:
        net.train()
        rows = _epoch_rows(len(train), train.t_idx, cfg, rng)
        total, count = 0.0, 0
        for b, start in enumerate(range(0, len(rows), cfg.batch_size)):
            sel = rows[start:start + cfg.batch_size]
            x, y = train.gather(sel), y_all[sel]
            ok = np.isfinite(y) & np.isfinite(x).all(axis=(1, 2))  # non-finite inputs never reach the loss
            if not ok.all():
                sel, x, y = sel[ok], x[ok], y[ok]
            if len(sel) < 2:
                continue
            xt = torch.from_numpy(x).to(device)
            yt = torch.from_numpy(np.ascontiguousarray(y)).to(device)
            dt = torch.from_numpy(train.t_idx[sel].astype(np.int64)).to(device) if cfg.loss == "ic" else None
            loss = _loss(net(xt), yt, cfg.loss, dt)
            if not torch.isfinite(loss):
                d0, d1 = train.dates_of(sel)
                raise FloatingPointError(
                    f"{desc}: loss is {loss.item()} at epoch {epoch} batch {b} ({len(sel)} samples dated "
                    f"{d0.date()}..{d1.date()}); lower lr or check the inputs of those days")
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_value_(net.parameters(), 3.0)
            opt.step()
            total += float(loss.item()) * len(sel)
            count += len(sel)
        metrics = {"train_loss": total / max(count, 1)}
        history["train"].append(metrics["train_loss"])
        if valid is not None and len(valid):
            ic = daily_rank_ic(predict_net(net, valid, cfg.batch_size, device), valid.label, valid.t_idx)
            metrics["valid_rank_ic"] = ic
            history["valid"].append(ic)
            if np.isfinite(ic) and ic > best_ic:
                best_ic, best_epoch = ic, epoch
                best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
        bar.set_postfix({k: round(v, 4) for k, v in metrics.items()})
        if on_epoch is not None:
            on_epoch(epoch, metrics)
        if best_epoch >= 0 and epoch - best_epoch >= cfg.early_stop:
            break
    if best_state is None:
        best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    history["best_epoch"] = best_epoch
    history["best_valid_rank_ic"] = best_ic if best_epoch >= 0 else float("nan")
    return best_state, history


@torch.no_grad()
def predict_net(net: torch.nn.Module, sampler, batch_size: int = 2000, device: str = "cpu") -> np.ndarray:
    """Scores of every sample of ``sampler`` (float32, sampler order)."""
    net.to(device)
    net.eval()
    out = np.empty(len(sampler), dtype=np.float32)
    for start in range(0, len(sampler), batch_size):
        sel = np.arange(start, min(start + batch_size, len(sampler)))
        x = torch.from_numpy(sampler.gather(sel)).to(device)
        out[sel] = net(x).float().cpu().numpy()
    return out
