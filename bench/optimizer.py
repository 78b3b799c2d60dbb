"""Benchmark: per-rebalance time of the index-enhancement optimizer against its peers, in one run.

    python bench/optimizer.py [--quick] [--sizes 800,1800,5000] [--rebalances 6]

Problems: ``qlib_ext.optim.random_problem.SyntheticMarket`` (A-share shaped: 31 industries of
uneven size, log-normal caps, benchmark = cap-weighted band of ranks 16%-36%, ~2% suspended and
~1% limit-up / limit-down each date), a weekly sequence whose holdings drift with random returns.
Constraint set: figure 10 (budget, long-only, 1% stock, 2% industry, size 0.3, 20% one-sided
turnover, 80% floor, tradability) plus nonlinear size 0.3 and size moments k = 2, 3 at 0.3.

Timed per rebalance (median over the sequence, rebalance 0 without w0 excluded):
* ours            IndexOptimizer, the default path: HiGHS dual simplex first (Clarabel as fallback),
                  warm-started from the previous rebalance's basis: assembly + solve + checks, split
                  into program_s (sparse LP assembly), solver_s (HiGHS) and result_s (weights,
                  brute-force constraint checks and diagnostics)
* ours_cold       the same without the warm start
* ours_clarabel   the same with Clarabel tried first (the previous default)
* naive_cvxpy     the same LP written plainly in cvxpy (``reference.CvxpyLP``), rebuilt every date
* cvxpy_dpp       that statement with every input a cp.Parameter, compiled once, then re-solved
* qlib            qlib.contrib.strategy.optimizer.EnhancedIndexingOptimizer (ECOS) on the same
                  data with its own problem: factor exposures F = [industry dummies, size, nlsize]
                  with f_dev = 2% / 0.3 / 0.3, b_dev = 1%, total turnover sum|w - w0| <= 40% (= 20%
                  one-sided), suspended stocks force-held; no constituent floor, no size moments,
                  no limit-up/down rules; lamb = 0 (no risk term, as in the report) but its
                  quadratic risk expression is still built, so ECOS solves an SOCP; when its turnover
                  constraint fails it re-solves without it (both solves timed, as a strategy sees).
The last line is the JSON record; ratios are peer seconds / ours at the largest n.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings

import numpy as np
import pandas as pd

from qlib_ext.optim import IndexOptimizer, NonlinearSize, SizeMoment, figure10_constraints
from qlib_ext.optim.program import build_program
from qlib_ext.optim.random_problem import SyntheticMarket
from qlib_ext.optim.reference import CvxpyLP

BACKTEST_REBALANCES = 380  # weekly, 2017-01 .. 2024-03


def constraint_set() -> list:
    return figure10_constraints() + [NonlinearSize(0.3), SizeMoment(2, 0.3), SizeMoment(3, 0.3)]


def sequence(n: int, rebalances: int, seed: int) -> tuple[list, list]:
    """Inputs of ``rebalances + 1`` weekly dates (holdings from our optimizer, drifted) and build times."""
    market, opt = SyntheticMarket(n, seed=seed), IndexOptimizer(constraint_set())
    rng = np.random.default_rng(seed)
    inputs, build_s, w0 = [], [], None
    for t in range(rebalances + 1):
        t0 = time.perf_counter()
        inp = market.cross_section(t, w0)
        build_s.append(time.perf_counter() - t0)
        inputs.append(inp)
        w = opt.solve(inp).weights
        w = w * (1 + rng.normal(0.0, 0.03, len(w)))
        w0 = (w / w.sum())[w > 0]
    return inputs, build_s[1:]


def qlib_peer():
    from qlib.contrib.strategy.optimizer import EnhancedIndexingOptimizer

    logging.getLogger("qlib").setLevel(logging.ERROR)
    opt = EnhancedIndexingOptimizer(lamb=0.0, delta=0.4, b_dev=0.01, epsilon=0.0)

    def solve(inp):
        H = np.eye(len(inp.industries))[inp.industry]
        F = np.column_stack([H, inp.exposure("size"), inp.exposure("nonlinear_size")])
        opt.f_dev = np.r_[np.full(H.shape[1], 0.02), 0.3, 0.3]
        cov, var_u = np.eye(F.shape[1]) * 1e-4, np.full(inp.n, 4e-4)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return opt(inp.alpha, F, cov, var_u, inp.w0, inp.benchmark, mfh=inp.suspended)

    return solve


CPU: dict = {}  # fn name -> CPU seconds per call (process time: robust to a loaded machine's waits)


def timed(fn, inputs: list, cpu_key: str | None = None) -> tuple[list, list]:
    secs, outs, cpu = [], [], []
    for inp in inputs:
        t0, c0 = time.perf_counter(), time.process_time()
        outs.append(fn(inp))
        secs.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    if cpu_key:
        CPU[cpu_key] = float(np.median(cpu))
    return secs, outs


def run_size(n: int, rebalances: int, seed: int) -> dict:
    inputs, build_s = sequence(n, rebalances, seed)
    inputs = inputs[1:]  # rebalance 0 has no portfolio yet (no turnover constraint)
    cons = constraint_set()
    ours, ours_cold = IndexOptimizer(cons), IndexOptimizer(cons, warm_start=False)
    ours_c = IndexOptimizer(cons, solvers=("clarabel", "highs"))
    ours.solve(inputs[0])  # the warm start of the first timed rebalance comes from the one before
    t_ours, res = timed(ours.solve, inputs, "ours")
    t_cold, res_cold = timed(ours_cold.solve, inputs)
    t_clar, res_c = timed(ours_c.solve, inputs)
    t_prog, _ = timed(lambda inp: build_program(inp, cons), inputs)
    t_naive, w_naive = timed(CvxpyLP(cons).solve, inputs)
    dpp = CvxpyLP(cons, parametric=True)
    t_dpp, w_dpp = timed(dpp.solve, inputs)
    t_qlib, w_qlib = timed(qlib_peer(), inputs, "qlib")
    w_ours = [r.weights.to_numpy() for r in res]
    agree = max(np.abs(a - b).max() for a, b in zip(w_ours, w_naive))
    agree_c = max(np.abs(a.weights.to_numpy() - b).max() for a, b in zip(res_c, w_ours))
    agree_cold = max(np.abs(a.weights.to_numpy() - b).max() for a, b in zip(res_cold, w_ours))
    agree_dpp = max(np.abs(a - b).max() for a, b in zip(w_ours, w_dpp))
    q_turn = max(0.5 * np.abs(w - inp.w0).sum() for w, inp in zip(w_qlib, inputs))
    q_floor = min(w[inp.members].sum() for w, inp in zip(w_qlib, inputs))
    iters = lambda rs: [a["iterations"] for r in rs for a in r.attempts if a["solver"] == r.solver]  # noqa: E731
    solve_only = [sum(a["seconds"] for a in r.attempts) for r in res]
    med = lambda xs: float(np.median(xs))  # noqa: E731
    return {
        "n": n, "universe": int(np.median([inp.n for inp in inputs])), "rebalances": len(inputs),
        "ours_s": med(t_ours), "program_s": med(t_prog), "solver_s": med(solve_only),
        "result_s": med(np.array(t_ours) - np.array(t_prog) - np.array(solve_only)),
        "ours_cold_s": med(t_cold), "ours_clarabel_s": med(t_clar), "ours_cpu_s": CPU["ours"],
        "qlib_cpu_s": CPU["qlib"],
        "naive_cvxpy_s": med(t_naive), "cvxpy_dpp_compile_s": t_dpp[0],
        "cvxpy_dpp_resolve_s": med(t_dpp[1:]) if len(t_dpp) > 1 else float("nan"),
        "qlib_s": med(t_qlib), "input_build_s": med(build_s),
        "highs_iterations_warm": med(iters(res)), "highs_iterations_cold": med(iters(res_cold)),
        "statuses": ",".join(sorted({f"{r.status}:{r.solver}" for r in res})),
        "max_dw_vs_naive": float(agree), "max_dw_clarabel_first": float(agree_c), "max_dw_cold": float(agree_cold),
        "max_dw_vs_dpp": float(agree_dpp),
        "qlib_max_turnover": float(q_turn), "qlib_min_floor": float(q_floor),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="n = 800 only (under a minute)")
    ap.add_argument("--sizes", default=None, help="comma-separated universe sizes")
    ap.add_argument("--rebalances", type=int, default=None, help="timed rebalances per size")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    sizes = [int(s) for s in (args.sizes or ("800" if args.quick else "800,1800,5000")).split(",")]
    rebalances = args.rebalances or (4 if args.quick else 6)
    rows = []
    for n in sizes:
        t = time.time()
        rows.append(run_size(n, rebalances, args.seed))
        print(f"n={n} done in {time.time() - t:.0f} s", file=sys.stderr)
    table = pd.DataFrame(rows).set_index("n")
    timing = ["universe", "ours_s", "ours_cpu_s", "program_s", "solver_s", "result_s", "ours_cold_s", "ours_clarabel_s",
              "naive_cvxpy_s", "cvxpy_dpp_compile_s", "cvxpy_dpp_resolve_s", "qlib_s", "qlib_cpu_s", "input_build_s",
              "highs_iterations_warm", "highs_iterations_cold"]
    pd.set_option("display.width", 200)
    print("seconds per rebalance (median)")
    print(table[timing].round(4).to_string())
    print("\nchecks")
    print(table.drop(columns=timing).to_string(float_format=lambda v: f"{v:.2e}"))
    top = table.loc[max(sizes)]
    est = {k: BACKTEST_REBALANCES * top[k] for k in ("ours_s", "ours_cpu_s", "ours_cold_s", "ours_clarabel_s")}
    print(f"\nestimated optimisation time of a {BACKTEST_REBALANCES}-rebalance weekly backtest at n={max(sizes)}: "
          f"{est['ours_s']:.1f} s (default: HiGHS first, warm; {est['ours_cpu_s']:.1f} s of CPU), "
          f"{est['ours_cold_s']:.1f} s (HiGHS cold), "
          f"{est['ours_clarabel_s']:.1f} s (Clarabel first); plus {BACKTEST_REBALANCES * top['input_build_s']:.1f} s "
          f"building inputs.  Split of the default per rebalance: program {top['program_s'] * 1e3:.1f} ms, "
          f"solver {top['solver_s'] * 1e3:.1f} ms, result and checks {top['result_s'] * 1e3:.1f} ms")
    figures = {f"n{r['n']}_{k}": round(float(r[k]), 5) for r in rows for k in timing if k != "universe"}
    figures.update({f"backtest{BACKTEST_REBALANCES}_n{max(sizes)}_{k[:-2]}_s": round(float(v), 2) for k, v in est.items()})
    ratios = {"qlib_enhanced_indexing": round(top["qlib_s"] / top["ours_s"], 2),
              "qlib_enhanced_indexing_cpu": round(top["qlib_cpu_s"] / top["ours_cpu_s"], 2),
              "ours_clarabel_first": round(top["ours_clarabel_s"] / top["ours_s"], 2),
              "naive_cvxpy_rebuild": round(top["naive_cvxpy_s"] / top["ours_s"], 2),
              "cvxpy_dpp_resolve": round(top["cvxpy_dpp_resolve_s"] / top["ours_s"], 2)}
    print(json.dumps({"bench": "optimizer", "figures": figures, "ratios": ratios}))


if __name__ == "__main__":
    main()
