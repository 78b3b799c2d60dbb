"""``GRUModel``: the report's daily / weekly K-line GRU on Qlib's ``Model`` contract (Huatai 2024, p.4).

Trains on a ``qlib_ext.handlers.SequenceDataset`` (segments ``train``, ``valid``; ``DailyKline`` or
``WeeklyKline`` handler), CPU by default and CUDA when present (``qlib_ext.device``).  ``n_seeds``
nets (seeds ``seed``, ``seed+1``, ...) are trained and their predictions averaged; each stops early on
the validation mean daily rank IC and keeps its best epoch.  On the CPU a seed gives bit-identical
predictions (torch, NumPy, Python and the batch sampler seeded; deterministic algorithms on).
Sampling for a time budget: ``sample_every=k`` trains on every k-th session (the validation segment
is thinned the same way), ``max_samples_per_epoch`` draws a fresh random subset each epoch.
Warm start: ``fit(dataset, init_from=previous_model)``, or ``warm_start=True`` to continue from this
model's own previous fit (rolling retraining).  Pickles through Qlib's recorder with CPU state dicts.
"""

from __future__ import annotations

import contextlib
import copy

import numpy as np
import pandas as pd
from qlib.log import get_module_logger
from qlib.model.base import Model
from qlib.utils import init_instance_by_config

from ..artifacts import active_recorder
from ..device import resolve_device

__all__ = ["GRUModel", "why_unlabelled"]

logger = get_module_logger("qlib_ext.models.GRUModel")


class GRUModel(Model):
    """GRU over K-line windows -> next-10-session neutralised return score (see the module docstring).

    ``net``: None for ``qlib_ext.models.nets.GRUNet(d_feat, hidden_size, num_layers, dropout)``, or a
    ``{class, module_path, kwargs}`` config of any ``nn.Module`` taking ``d_feat`` (added to its kwargs).
    ``loss``: ``mse`` or ``ic`` (minus the mean daily Pearson IC; batches are then grouped by day).
    ``num_threads``: torch CPU threads (None leaves torch's setting).
    """

    def __init__(self, d_feat: int | None = None, hidden_size: int = 64, num_layers: int = 2,
                 dropout: float = 0.0, n_epochs: int = 20, lr: float = 1e-3, batch_size: int = 2000,
                 early_stop: int = 5, loss: str = "mse", n_seeds: int = 1, seed: int = 0, sample_every: int = 1,
                 max_samples_per_epoch: int | None = None, device: str = "auto", net: dict | None = None,
                 num_threads: int | None = None, warm_start: bool = False, progress: bool = True):
        if loss not in ("mse", "ic"):
            raise ValueError(f"GRUModel: loss must be 'mse' or 'ic', got {loss!r}")
        if n_seeds < 1 or n_epochs < 1 or batch_size < 2 or sample_every < 1:
            raise ValueError("GRUModel: n_seeds, n_epochs, sample_every must be >= 1 and batch_size >= 2")
        self.d_feat, self.hidden_size, self.num_layers, self.dropout = d_feat, hidden_size, num_layers, dropout
        self.n_epochs, self.lr, self.batch_size, self.early_stop = n_epochs, lr, batch_size, early_stop
        self.loss, self.n_seeds, self.seed = loss, int(n_seeds), int(seed)
        self.sample_every, self.max_samples_per_epoch = int(sample_every), max_samples_per_epoch
        self.device, self.net, self.num_threads = device, copy.deepcopy(net), num_threads
        self.warm_start, self.progress = warm_start, progress
        self.states: list[dict] = []  # one CPU state_dict per seed, after fit
        self.histories: list[dict] = []
        self.fitted_d_feat: int | None = None

    # ------------------------------------------------------------------ nets
    def build_net(self, d_feat: int):
        """A fresh (randomly initialised from torch's current seed) net of this model's architecture."""
        if self.net is None:
            from .nets import GRUNet

            return GRUNet(d_feat, self.hidden_size, self.num_layers, self.dropout)
        cfg = copy.deepcopy(self.net)
        cfg.setdefault("kwargs", {})["d_feat"] = d_feat
        return init_instance_by_config(cfg)

    def _samplers(self, dataset):
        from ..handlers.sequence import SequenceDataset

        if not isinstance(dataset, SequenceDataset):
            raise TypeError(f"GRUModel needs a qlib_ext.handlers.SequenceDataset, got {type(dataset).__name__}")
        train = dataset.prepare("train").labelled().every(self.sample_every)
        if len(train) == 0:
            raise ValueError(f"GRUModel: {why_unlabelled(dataset, 'train')}")
        valid = dataset.prepare("valid").labelled().every(self.sample_every) if "valid" in dataset.segments else None
        if valid is not None and len(valid) == 0:
            logger.warning(f"GRUModel: no early stopping, the last epoch is kept: {why_unlabelled(dataset, 'valid')}")
        return train, valid

    # ------------------------------------------------------------------ Model API
    def fit(self, dataset, evals_result: dict | None = None, reweighter=None, init_from: GRUModel | None = None):
        """Train ``n_seeds`` nets on the dataset's ``train`` segment, early stopping on ``valid`` rank IC."""
        from .trainer import TrainConfig, deterministic, seed_everything, train_net

        if reweighter is not None:
            raise NotImplementedError("GRUModel: sample reweighting is not supported")
        train, valid = self._samplers(dataset)
        d_feat = train.d_feat
        if self.d_feat is not None and int(self.d_feat) != d_feat:
            raise ValueError(f"GRUModel: d_feat={self.d_feat} but the dataset's windows have {d_feat} channels")
        init = init_from.states if init_from is not None else (self.states if self.warm_start else [])
        device = resolve_device(self.device)
        recorder = active_recorder()
        logger.info(f"GRUModel: {len(train)} train / {len(valid) if valid is not None else 0} valid samples, "
                    f"window {train.window}x{d_feat}, device {device}, {self.n_seeds} seed(s)")
        states, histories = [], []
        with deterministic(), _torch_threads(self.num_threads):
            for i in range(self.n_seeds):
                seed = self.seed + i
                seed_everything(seed)
                net = self.build_net(d_feat)
                if init:
                    net.load_state_dict(init[i % len(init)])
                cfg = TrainConfig(self.n_epochs, self.lr, self.batch_size, self.early_stop, self.loss,
                                  self.max_samples_per_epoch, seed)

                def on_epoch(epoch, metrics, i=i):
                    if recorder is not None:
                        recorder.log_metrics(step=epoch, **{f"gru.seed{i}.{k}": float(v) for k, v in metrics.items()
                                                           if np.isfinite(v)})

                state, hist = train_net(net, train, valid, cfg, device=device, progress=self.progress,
                                        on_epoch=on_epoch, desc=f"GRU seed {seed}")
                logger.info(f"GRUModel seed {seed}: best epoch {hist['best_epoch']}, "
                            f"valid rank IC {hist['best_valid_rank_ic']:.4f}")
                states.append(state)
                histories.append(hist)
        self.states, self.histories, self.fitted_d_feat = states, histories, d_feat
        if evals_result is not None:
            evals_result["train"] = [h["train"] for h in histories] if self.n_seeds > 1 else histories[0]["train"]
            evals_result["valid"] = [h["valid"] for h in histories] if self.n_seeds > 1 else histories[0]["valid"]
        return self

    def predict(self, dataset, segment: str = "test") -> pd.Series:
        """Mean over the seeds' nets of the scores of ``segment``'s samples, indexed (datetime, instrument)."""
        from ..handlers.sequence import SequenceDataset
        from .trainer import deterministic, predict_net

        if not self.states:
            raise ValueError("GRUModel is not fitted yet")
        if not isinstance(dataset, SequenceDataset):
            raise TypeError(f"GRUModel needs a qlib_ext.handlers.SequenceDataset, got {type(dataset).__name__}")
        sampler = dataset.prepare(segment)
        device = resolve_device(self.device)
        total = np.zeros(len(sampler), dtype=np.float64)
        with deterministic(), _torch_threads(self.num_threads):
            for state in self.states:
                net = self.build_net(self.fitted_d_feat)
                net.load_state_dict(state)
                total += predict_net(net, sampler, self.batch_size, device)
        return pd.Series((total / len(self.states)).astype(np.float32), index=sampler.index, name="score")


def why_unlabelled(dataset, segment: str) -> str:
    """Why ``segment`` of a ``SequenceDataset`` has no labelled sample: no rows, the label expression, or a processor.

    Looks at the segment's samples, the handler's raw label (``DK_R``), its fields in the dataset and
    the learn processors, and returns one sentence naming the field, dates and fix.
    """
    from qlib.data.dataset.handler import DataHandlerLP

    from ..factors.requirements import expression_fields

    start, end = (pd.Timestamp(x) if x is not None else None for x in dataset.segments[segment])
    panel = dataset.panel
    head = f"the {segment} segment {start.date() if start else '-'}..{end.date() if end else '-'} has no labelled samples"
    samples = dataset.prepare(segment)
    h = dataset.handler
    fields = getattr(getattr(h, "data_loader", None), "fields", None)
    if len(samples) == 0:
        inside = len(panel.dates) and (start is None or start <= panel.dates.max()) and (
            end is None or end >= panel.dates.min())
        if not inside:
            return (f"{head}: it has no samples at all; the handler's data cover {panel.dates.min().date()}.."
                    f"{panel.dates.max().date()} for {len(panel.instruments)} instruments (put the segment inside "
                    f"the handler's start_time..end_time)")
        try:
            feats = h.fetch(slice(start, end), col_set="feature", data_key=DataHandlerLP.DK_R)
        except (AttributeError, KeyError, ValueError):
            feats = None
        names = [c[-1] if isinstance(c, tuple) else c for c in ([] if feats is None else feats.columns)]
        exprs = dict(zip(fields["feature"][1], fields["feature"][0], strict=False)) if isinstance(fields, dict) else {}
        empty = [f"{n} ({exprs.get(n, '?')})" for j, n in enumerate(names)
                 if not np.isfinite(feats.iloc[:, j].to_numpy(dtype=np.float64)).any()]
        return (f"{head}: no stock has a traded bar in it or before it (finite positive prices, volume > 0)"
                + (f"; no finite value at all in {', '.join(empty)} there (missing or empty in the dataset: check "
                   f"it with `qlib-ext data check`)" if empty else ""))
    label_exprs = fields.get("label", ([], []))[0] if isinstance(fields, dict) else []
    expr = label_exprs[0] if label_exprs else "?"
    try:
        raw = h.fetch(slice(start, end), col_set="label", data_key=DataHandlerLP.DK_R)
    except (AttributeError, KeyError, ValueError):
        raw = None
    n_raw = 0 if raw is None else int(np.isfinite(raw.to_numpy(dtype=np.float64)).sum())
    if raw is not None and n_raw == 0:
        from qlib.data import D

        horizon = getattr(h, "label_horizon", None)
        cal = D.calendar()
        first = int(np.searchsorted(cal, pd.Timestamp(samples.index.get_level_values("datetime").min()), "left"))
        if horizon is not None and first + int(horizon) + 1 >= len(cal):
            return (f"{head}: its label {expr} looks {int(horizon) + 1} sessions ahead and the data end on "
                    f"{pd.Timestamp(cal[-1]).date()}; end the segment at least {int(horizon) + 1} sessions earlier")
        insts = sorted(samples.index.get_level_values("instrument").unique())
        empty = []
        for f in expression_fields(expr):
            got = D.features(insts, [f"${f}"], start_time=start, end_time=end)
            if not np.isfinite(got.to_numpy(dtype=np.float64)).any():
                empty.append(f"${f}")
        why = (f"field(s) {', '.join(empty)} have no finite value for these {len(insts)} instruments (missing "
               f"or empty in the dataset: check it with `qlib-ext data check`)" if empty else
               "its fields have values but the expression is NaN on every sample")
        return f"{head}: the label {expr} is NaN on all {len(samples)} samples: {why}"
    procs = [p.describe() if hasattr(p, "describe") else type(p).__name__ for p in getattr(h, "learn_processors", [])]
    why = f"{head}: the raw label {expr} has {n_raw} finite values there, but the learn processors {procs} left none"
    neut = [p for p in getattr(h, "learn_processors", []) if hasattr(p, "min_names")]
    if neut and raw is not None:
        per_day = np.isfinite(raw.iloc[:, 0].to_numpy(dtype=np.float64))
        most = pd.Series(per_day).groupby(raw.index.get_level_values("datetime").to_numpy()).sum().max()
        why += (f"; {neut[0].describe()} needs min_names={neut[0].min_names} names with a label and finite exposures "
                f"on a day and the segment has at most {int(most)} labelled names a day (widen the universe, "
                f"lower min_names or pass neutralize=None)")
    return why


@contextlib.contextmanager
def _torch_threads(n: int | None):
    """``torch.set_num_threads(n)`` inside the block (process-global in torch), restored after; None: as is."""
    import torch

    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)
