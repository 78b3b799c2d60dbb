"""Bench: what the ``report`` model profile would cost -- one window of one GRU on the CPU, extrapolated.

    python bench/report_profile.py --quick                          # tiny market built in a temp folder
    python bench/report_profile.py --data data/qlib_ext_default [--preset default] [--epochs 1] [--threads 1]

Why: the report profile (configs/models/report.yaml: every session, up to 30 epochs, 5 seeds) cannot be
run end to end on 2 cores to find out (issue 22, item 4).  So, on the first rolling window of the main
job's signal (``signal.train/valid`` of configs/pipeline/<preset>.yaml, ensemble.yaml as the job
renders it, Qlib's ``RollingGen`` windows), this times with wall and CPU clocks:

* prep       the daily K-line ``SequenceDataset`` (handler load + processors, the window's re-fit, the panel);
* report     ``gru_daily`` of the report profile, 1 seed, ``--epochs`` epochs, early stopping off
             (an epoch = one pass over every labelled session's samples + the valid rank IC);
* fast       the peer: ``gru_daily`` of the fast profile as configured (sample_every 3, 60k samples per
             epoch, its epochs and early stopping, 1 seed) on the same window, in the same run;
* infer      each model's predictions on the valid segment;
* weekly     the same for ``gru_weekly`` (``--no-weekly``: not measured, assumed to cost what the daily does).

Extrapolation, per model profile P (E_P = its n_epochs, S_P = its n_seeds, W = the windows that
``qlib_ext.models.Rolling`` makes from the job's segments and step), summed over the two GRUs:

    upper bound  = sum_GRU W * (prep + E_P * epoch_P * S_P + infer_P)
    as configured = sum_GRU [prep * W + (E_P + (W-1) * E_warm) * epoch_P * S_P + W * infer_P]

where E_warm is ensemble.yaml's ``warm_overrides.n_epochs`` (2, in both profiles: windows after the
first are warm-started).  The upper bound pays prep per window; the job loads each handler once and
per window only re-fits its processors and rebuilds the panel.  Early stopping (report: 5) can only
cut the epochs.  The report profile also trains the whole signal a second time with the ``strict``
label (``signal_strict``, figure 20), shown apart.  Peak RSS: this process.  The last line is the JSON
record; ratios are fast / report (wall, upper bound unless named otherwise).
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch
from qlib.utils import init_instance_by_config

from qlib_ext.config import deep_merge
from qlib_ext.models.rolling import refit_processors, resolve_model_config, rolling_windows, window_dataset
from qlib_ext.pipeline.cache import cpu_seconds, peak_rss_mb
from qlib_ext.pipeline.job import load_job, signal_task
from qlib_ext.pipeline.workflow import init_qlib


class Clock:
    """Wall and CPU seconds of a block (``with Clock() as c: ...; c.wall, c.cpu``)."""

    def __enter__(self) -> Clock:
        self.w0, self.c0 = time.perf_counter(), cpu_seconds()
        return self

    def __exit__(self, *exc) -> None:
        self.wall, self.cpu = time.perf_counter() - self.w0, cpu_seconds() - self.c0


def member(task: dict, name: str) -> tuple[dict, dict]:
    """(dataset config, Rolling kwargs) of the ensemble member ``name`` of the rendered signal task."""
    for m in task["model"]["kwargs"]["members"]:
        if m["name"] == name:
            return copy.deepcopy(m["dataset"]), copy.deepcopy(m["model"]["kwargs"])
    raise KeyError(f"no member {name!r} in the signal task")


def first_window(ds_conf: dict, roll: dict) -> tuple[object, int, dict]:
    """The member's dataset cut to its first rolling window (as ``Rolling.fit`` does), window count, timings."""
    with Clock() as c:
        dataset = init_instance_by_config(ds_conf)
        trunc = roll.get("trunc_days") or int(roll.get("label_horizon", 10)) + 2
        wins = rolling_windows(dataset.segments, int(roll.get("step", 244)), roll.get("rtype", "sliding"), trunc)
        refitted = refit_processors(dataset.handler, *wins[0]["train"])
        ds = window_dataset(dataset, wins[0], refitted)  # builds the panel
    return ds, len(wins), {"wall": c.wall, "cpu": c.cpu}


def measure(conf: dict, ds, overrides: dict, scale_to_full: bool = False) -> dict:
    """Fit one GRUModel (``conf`` with ``overrides``) on ``ds``; per-epoch and inference timings, samples.

    ``scale_to_full``: the epoch was capped (``--samples``); its training part is scaled linearly to
    every sample of the window and its validation pass (about one inference over valid) kept as is.
    """
    conf = deep_merge(conf, {"kwargs": overrides})
    model = init_instance_by_config(conf)
    train, valid = model._samplers(ds)  # the samplers fit() trains on (labelled, every k-th session)
    cap = model.max_samples_per_epoch
    n_train = min(len(train), int(cap)) if cap is not None else len(train)
    with Clock() as fit:
        model.fit(ds)
    epochs = len(model.histories[0]["train"])
    with Clock() as inf:
        pred = model.predict(ds, "valid")
    out = {"epoch_wall": fit.wall / epochs, "epoch_cpu": fit.cpu / epochs, "epochs_run": epochs,
           "train_samples": n_train, "valid_samples": len(valid) if valid is not None else 0,
           "infer_wall": inf.wall, "infer_cpu": inf.cpu, "infer_samples": len(pred)}
    if scale_to_full and n_train < len(train):
        scale = len(train) / n_train
        for c in ("wall", "cpu"):
            out[f"epoch_{c}"] = max(out[f"epoch_{c}"] - out[f"infer_{c}"], 0.0) * scale + out[f"infer_{c}"]
        out.update(measured_samples=n_train, train_samples=len(train))
    return out


def extrapolate(prep: float, m: dict, key: str, epochs: int, seeds: int, windows: int, warm_epochs: int) -> dict:
    """Seconds of one GRU over all windows: the upper bound and as configured (module docstring)."""
    epoch, infer = m[f"epoch_{key}"], m[f"infer_{key}"]
    upper = windows * (prep + epochs * epoch * seeds + infer)
    configured = prep * windows + (epochs + (windows - 1) * warm_epochs) * epoch * seeds + windows * infer
    return {"upper": upper, "configured": configured}


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="report_profile_"))
    try:
        run_bench(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_bench(tmp: Path) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", help="Qlib dataset directory")
    ap.add_argument("--preset", default=None, help="job preset (configs/pipeline/): default | full | tiny")
    ap.add_argument("--epochs", type=int, default=1, help="epochs of the measured report-profile GRU")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (both profiles)")
    ap.add_argument("--no-weekly", action="store_true", help="skip gru_weekly (assume it costs as gru_daily)")
    ap.add_argument("--quick", action="store_true", help="the tiny market (minute bars cut) in a temp folder")
    ap.add_argument("--samples", type=int, default=None,
                    help="cap the measured report epoch at N samples and scale it to the full epoch (the full "
                         "market's 3.4M samples an epoch take ~20 min on this CPU)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.quick:
        from qlib_ext.data.synth import build_market, load_market_config

        market = load_market_config("tiny", minute_window=5)  # the GRUs read no minute bars
        args.data = str(build_market(market, tmp / "qlib_data", progress=False))
        args.preset = args.preset or "tiny"
    if not args.data:
        ap.error("--data DATASET_DIR or --quick")
    preset = args.preset or "default"
    data = Path(args.data).expanduser().resolve()
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    init_qlib(data, uri)
    # the GRUs' task as the job renders it, whatever the preset's own signal.workflow (tiny: lgb_minute)
    job = load_job(preset, data=str(data), signal={"workflow": "ensemble", "exclude": []})
    task = signal_task(job, data, uri, "report")
    run = {"device": "cpu", "num_threads": args.threads, "progress": False}  # fast.yaml's 2 threads -> --threads
    report_over = {**run, "n_seeds": 1, "n_epochs": args.epochs, "early_stop": args.epochs + 1}
    if args.samples:
        report_over["max_samples_per_epoch"] = int(args.samples)

    rows, fig = [], {}
    for gru in ("gru_daily", "gru_weekly"):
        if gru == "gru_weekly" and args.no_weekly:
            break
        ds_conf, roll = member(task, gru)
        ds, windows, prep = first_window(ds_conf, roll)
        warm = int((roll.get("warm_overrides") or {}).get("n_epochs", 0)) or None
        rows.append((f"{gru} prep (handler + panel)", prep["wall"], prep["cpu"], ""))
        for prof, over in (("report", report_over), ("fast", run)):
            conf = resolve_model_config(gru, prof)
            m = measure(conf, ds, over, scale_to_full=prof == "report")
            scaled = f", scaled from {m['measured_samples']}" if "measured_samples" in m else ""
            rows.append((f"{gru} {prof} epoch (mean of {m['epochs_run']}{scaled})", m["epoch_wall"], m["epoch_cpu"],
                         m["train_samples"]))
            rows.append((f"{gru} {prof} inference (valid)", m["infer_wall"], m["infer_cpu"], m["infer_samples"]))
            kw = conf["kwargs"]
            e, s = int(kw["n_epochs"]), int(kw.get("n_seeds", 1))
            fig[f"{gru}.{prof}"] = {**m, "prep_wall": prep["wall"], "prep_cpu": prep["cpu"], "windows": windows,
                                    "n_epochs": e, "n_seeds": s, "warm_epochs": warm or e,
                                    **{f"{k}_{c}": v for c in ("wall", "cpu")
                                       for k, v in extrapolate(prep[c], m, c, e, s, windows, warm or e).items()}}
    if args.no_weekly:  # assumption: the weekly GRU costs what the daily one does
        for p in ("report", "fast"):
            fig[f"gru_weekly.{p}"] = dict(fig[f"gru_daily.{p}"], assumed="same as gru_daily")

    def total(prof: str, key: str) -> float:
        return sum(fig[f"{g}.{prof}"][key] for g in ("gru_daily", "gru_weekly"))

    totals = {f"{p}_{k}_{c}_s": total(p, f"{k}_{c}") for p in ("report", "fast") for k in ("upper", "configured")
              for c in ("wall", "cpu")}
    d = fig["gru_daily.report"]
    print(f"preset {preset}, data {data}, torch threads {args.threads}; first window of {d['windows']} "
          f"(rolled every {member(task, 'gru_daily')[1].get('step')} sessions)\n")
    print(f"{'stage':<44}{'wall s':>10}{'CPU s':>10}{'samples':>10}")
    for name, w, c, n in rows:
        print(f"{name:<44}{w:>10.2f}{c:>10.2f}{n:>10}")
    print("\nextrapolated, 2 GRUs x all windows, hours (wall / CPU):")
    for p in ("report", "fast"):
        f = fig[f"gru_daily.{p}"]
        up, cf = (f"{totals[f'{p}_{k}_wall_s'] / 3600:.3g} / {totals[f'{p}_{k}_cpu_s'] / 3600:.3g}"
                  for k in ("upper", "configured"))
        print(f"  {p:<7} upper bound ({f['n_epochs']} epochs x {f['n_seeds']} seed(s), every window): {up}; "
              f"as configured (windows after the first warm-started, {f['warm_epochs']} epochs): {cf}")
    print(f"  report + signal_strict (the whole signal again with the strict label): x2 = "
          f"{2 * totals['report_upper_wall_s'] / 3600:.3g} h upper bound; early stopping (5) can only cut epochs")
    fig.update(totals, peak_rss_mb=peak_rss_mb(), threads=args.threads, preset=preset, measured_epochs=args.epochs)
    print(f"  peak RSS {fig['peak_rss_mb']:.0f} MiB")
    ratios = {"fast": totals["fast_upper_wall_s"] / totals["report_upper_wall_s"],
              "fast_configured": totals["fast_configured_wall_s"] / totals["report_configured_wall_s"],
              "fast_cpu": totals["fast_upper_cpu_s"] / totals["report_upper_cpu_s"]}
    print(json.dumps({"bench": "report_profile", "figures": fig, "ratios": ratios}, default=float))


if __name__ == "__main__":
    main()
