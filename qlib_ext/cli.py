"""``qlib-ext`` command line: thin argument parsing over the package's modules."""

from __future__ import annotations

import argparse
import sys
import time


def _cmd_synth(args: argparse.Namespace) -> int:
    from .data.synth import build_market

    t0 = time.time()
    out = build_market(args.preset, args.out, seed=args.seed, progress=not args.quiet)
    print(f"wrote the synthetic '{args.preset}' market to {out} in {time.time() - t0:.0f} s")
    print("point Qlib at it with:")
    print(f"    import qlib_ext; qlib_ext.init('{out}')      # or qlib.init(provider_uri='{out}', region='cn')")
    print(f"check it with:  qlib-ext data check {out}")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from .data.check import check_dataset

    require = [u.strip() for u in args.require.split(",") if u.strip()] if args.require else None
    report = check_dataset(args.dir, max_instruments=args.max_instruments, require=require)
    print(report.render())
    return 0 if report.ok else 1


def _cmd_import(args: argparse.Namespace) -> int:
    from .data.importers import import_dataset

    t0 = time.time()
    report = import_dataset(args.source, args.out, augment=args.augment, strict=args.strict, units=args.units,
                            encoding=args.encoding, accept_factor_jumps=args.accept_factor_jumps,
                            progress=not args.quiet)
    print(report.render() if hasattr(report, "render") else report)
    print(f"imported {args.source} into {args.augment or args.out} in {time.time() - t0:.0f} s")
    return 0


def _cmd_minute_factors(args: argparse.Namespace) -> int:
    from .ops.build import build_minute_factors

    t0 = time.time()
    fields = build_minute_factors(args.data, source=args.source, start=args.start, end=args.end,
                                  device=args.device, progress=not args.quiet)
    print(f"wrote {len(fields)} minute-factor fields into {args.data} in {time.time() - t0:.0f} s: {', '.join(fields)}")
    return 0


def _cmd_risk_build(args: argparse.Namespace) -> int:
    from .risk import build_risk

    t0 = time.time()
    out = build_risk(args.data, start=args.start, end=args.end, progress=not args.quiet,
                     export_qlib=args.qlib_every > 0, qlib_every=max(args.qlib_every, 1))
    print(f"wrote the risk model to {out} in {time.time() - t0:.0f} s")
    return 0


def _cmd_configs_list(args: argparse.Namespace) -> int:
    from .config import list_configs

    rows = list_configs(args.family, shadowed=True)
    winners = {(s.family, s.name): s for s in reversed(rows)}  # the first hit of each name wins
    for src in rows:
        mark = "" if winners[(src.family, src.name)] == src else "  (shadowed)"
        print(f"{src.family:<10} {src.name:<20} {src.origin:<8} {src.path}{mark}")
    if not rows:
        print("no configs found")
    return 0


def _cmd_configs_show(args: argparse.Namespace) -> int:
    import yaml

    from .config import FAMILIES, list_configs, resolve_config

    family = args.family
    if family is None and not args.name.endswith((".yaml", ".yml")):
        hits = sorted({s.family for s in list_configs() if s.name == args.name})
        if len(hits) > 1:
            raise ValueError(f"config {args.name!r} exists in families {hits}: pass --family")
        family = hits[0] if hits else None
    if family is None:
        raise ValueError(f"config {args.name!r} not found in any family {list(FAMILIES)}; try `qlib-ext configs list`")
    cfg, chain = resolve_config(family, args.name)
    for src in chain:
        print(f"# {src.family}/{src.name}: {src.origin} {src.path}")
    print(yaml.safe_dump(cfg, sort_keys=False), end="")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from .analysis.report import build_report

    target = Path(args.target)
    if args.mlruns is None and not target.exists() and not Path("mlruns.db").is_file():
        # an experiment name or recorder id needs a store: never create an empty ./mlruns.db to look in
        raise ValueError(f"{args.target!r} is not a sweep folder or runs file, and no --mlruns was given nor "
                         f"./mlruns.db exists in {Path.cwd()}: pass --mlruns <tracking URI or mlruns folder>")
    t0 = time.perf_counter()
    out = build_report(args.target, args.out, uri=args.mlruns, all_runs=args.all,
                       save_artifact=args.save_artifact, title=args.title)
    print(f"report written to {out} ({out.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - t0:.1f} s)")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from .pipeline.job import check_job, default_preset, run_job

    if args.preset is None:
        args.preset = default_preset(args.data)
        if args.preset != "default":
            print(f"{args.data} is not a synthetic market of ours: using the {args.preset!r} preset (windows and "
                  "benchmarks fitted to the data; --preset NAME to choose another)")
    if args.check:
        ok, text = check_job(args.preset, data=args.data)
        print(text)
        return 0 if ok else 1
    run_job(args.preset, data=args.data, out=args.out, profile=args.profile)
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from .pipeline.sweep import run_sweep

    res = run_sweep(args.config, out=args.out, workers=args.workers, scheduler=args.scheduler,
                    tracking_uri=args.tracking_uri)
    return 1 if res["failed"] or res["missing"] else 0


def _workers(text: str) -> int:
    """``--workers``: an integer >= 1."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--workers must be an integer >= 1, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"--workers must be >= 1 (1 = serial in this process), got {n}")
    return n


def _terminate_as_interrupt() -> None:
    """SIGTERM raises KeyboardInterrupt, so a stopped run or sweep unwinds: temp folders, Dask workers and
    the tracking server it started are removed on the way out (``kill -9`` leaves them to the next run)."""
    import signal

    def handler(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qlib-ext", description=__doc__)
    sub = parser.add_subparsers(dest="group", required=True)

    data = sub.add_parser("data", help="datasets: build the synthetic market, check a dataset")
    dsub = data.add_subparsers(dest="command", required=True)
    synth = dsub.add_parser("synth", help="generate the embedded synthetic A-share market")
    synth.add_argument("--preset", default="default", help="tiny | default | full, or a YAML path")
    synth.add_argument("--out", required=True, help="target dataset directory (replaced atomically)")
    synth.add_argument("--seed", type=int, default=None, help="override the preset's seed")
    synth.add_argument("--quiet", action="store_true", help="no progress bar")
    synth.set_defaults(func=_cmd_synth)

    check = dsub.add_parser("check", help="validate a Qlib dataset; exit 1 naming what failed")
    check.add_argument("dir")
    check.add_argument("--max-instruments", type=int, default=None, help="check only the first N stocks")
    check.add_argument("--require", default=None, metavar="USES",
                       help="comma list of qlib,strategy,risk,minute: fields those uses need are errors, the rest "
                            "warnings; the report says what the other uses still need (default: what "
                            "meta/dataset.json claims, else every SPEC field)")
    check.set_defaults(func=_cmd_check)

    imp = dsub.add_parser("import", help="import tushare-like CSV/Parquet files into a Qlib dataset")
    imp.add_argument("--source", required=True, help="directory of daily/shares/industry/index_*/minute files")
    imp.add_argument("--out", default=None, help="target dataset directory (replaced atomically)")
    imp.add_argument("--augment", default=None, help="existing Qlib directory: add only the missing fields")
    imp.add_argument("--strict", action="store_true", help="treat validation warnings as errors")
    imp.add_argument("--units", default="auto", choices=["auto", "fixture", "tushare"],
                     help="vol/amount/share units: the fixture's (shares, CNY) or tushare's (lots, kCNY, 1e4)")
    imp.add_argument("--encoding", default=None, metavar="NAME",
                     help="text encoding of the CSV files, e.g. gbk for Chinese Windows exports (default: a BOM's, "
                          "else UTF-8)")
    imp.add_argument("--accept-factor-jumps", action="store_true",
                     help="keep adj_factor jumps that prices do not explain (an error otherwise) as warnings, "
                          "listed in meta/dataset.json")
    imp.add_argument("--quiet", action="store_true")
    imp.set_defaults(func=_cmd_import)

    factors = sub.add_parser("factors", help="derived daily fields")
    fsub = factors.add_subparsers(dest="command", required=True)
    minute = fsub.add_parser("minute", help="compute the minute-factor library into daily mf_* fields")
    minute.add_argument("--data", required=True, help="Qlib dataset directory")
    minute.add_argument("--source", default="auto", help="auto | stream | bins | a tushare-like minute directory")
    minute.add_argument("--start", default=None)
    minute.add_argument("--end", default=None)
    minute.add_argument("--device", default="auto", help="auto | cpu | cuda")
    minute.add_argument("--quiet", action="store_true")
    minute.set_defaults(func=_cmd_minute_factors)

    risk = sub.add_parser("risk", help="the Barra-style risk model")
    rsub = risk.add_subparsers(dest="command", required=True)
    rbuild = rsub.add_parser("build", help="exposures, factor returns, covariance; Qlib riskmodel_root export")
    rbuild.add_argument("--data", required=True, help="Qlib dataset directory")
    rbuild.add_argument("--start", default=None)
    rbuild.add_argument("--end", default=None)
    rbuild.add_argument("--qlib-every", type=int, default=1,
                        help="export Qlib's riskmodel_root every N sessions (0: no export; it is large)")
    rbuild.add_argument("--quiet", action="store_true")
    rbuild.set_defaults(func=_cmd_risk_build)

    configs = sub.add_parser("configs", help="presets: what is found and from where (see qlib_ext.config)")
    csub = configs.add_subparsers(dest="command", required=True)
    clist = csub.add_parser("list", help="every preset found: family, name, origin, file")
    clist.add_argument("family", nargs="?", default=None, help="market | optimizer | models | sweeps")
    clist.set_defaults(func=_cmd_configs_list)
    cshow = csub.add_parser("show", help="a preset resolved through its base chain, with the files used")
    cshow.add_argument("name", help="preset name or YAML path")
    cshow.add_argument("--family", default=None, help="needed when the name exists in several families")
    cshow.set_defaults(func=_cmd_configs_show)

    report = sub.add_parser("report", help="one self-contained HTML page of a run's (or a sweep's) figures and tables")
    report.add_argument("target", help="experiment name (its latest run), recorder id, or sweep dir / sweep.json")
    report.add_argument("--out", default="report.html", help="HTML file to write")
    report.add_argument("--mlruns", default=None,
                        help="MLflow tracking URI or mlruns directory (default: the sweep's, else sqlite:///mlruns.db)")
    report.add_argument("--all", action="store_true", help="every run of the experiment, side by side")
    report.add_argument("--save-artifact", action="store_true", help="also log the page as report/report.html of the run")
    report.add_argument("--title", default=None)
    report.set_defaults(func=_cmd_report)

    run = sub.add_parser("run", help="the main job: market, minute factors, risk, models, backtests, report")
    run.add_argument("--preset", default=None,
                     help="tiny | default | full | real (configs/pipeline/), or a YAML path; default: real when "
                          "--data holds a dataset that is not a synthetic market of ours, else default")
    run.add_argument("--data", default=None, help="dataset directory (built from the preset's market when empty)")
    run.add_argument("--out", default=None, help="output folder: stage cache, signal, MLflow store, tables, report")
    run.add_argument("--profile", default="fast", choices=["fast", "report"], help="model training budget")
    run.add_argument("--check", "--dry-run", action="store_true",
                     help="print the preflight (what each stage needs, the windows) and exit 0/1 without running")
    run.set_defaults(func=_cmd_run)

    sweep = sub.add_parser("sweep", help="the report's experiment grid as recorded Qlib runs (resumable, parallel)")
    sweep.add_argument("config", help="sweep config: configs/sweeps/<name>.yaml or a name (report)")
    sweep.add_argument("--out", default=None, help="sweep folder (default: the config's `out`)")
    sweep.add_argument("--workers", type=_workers, default=None,
                       help="local worker processes >= 1 (default: all cores; 1 = serial)")
    sweep.add_argument("--scheduler", default=None, help="existing Dask scheduler tcp://HOST:PORT (shared paths)")
    sweep.add_argument("--tracking-uri", default=None,
                       help="MLflow tracking server (default: one started for a parallel sweep)")
    sweep.set_defaults(func=_cmd_sweep)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .files import LockHeld

    args = build_parser().parse_args(argv)
    if args.func in (_cmd_run, _cmd_sweep) and argv is None:
        _terminate_as_interrupt()
    try:
        return args.func(args)
    except (OSError, ValueError, LockHeld) as exc:
        print(f"qlib-ext: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

