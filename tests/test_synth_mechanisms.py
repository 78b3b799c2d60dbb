"""Issue 21's mechanisms of the synthetic market: off by default, on through ``mechanisms:`` (default/full),
calibrated to factor-level facts; checked on a tiny-sized build with the default preset's knobs."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from qlib_ext.data.synth import build_market, load_market_config
from qlib_ext.data.synth.facts import MECHANISM_TARGETS, mechanism_facts, path_facts
from qlib_ext.data.synth.mechanisms import Mechanisms, monthly_noise, read_spread_targets
from qlib_ext.data.synth.spreads import CRASH_WINDOWS, DECILES, STYLE_WINDOWS, daily_spreads, window_sums

from conftest import micro_config


def tiny_with_mechanisms(**overrides) -> dict:
    """The tiny preset with the default preset's ``mechanisms:`` section (tiny itself has none)."""
    return load_market_config("tiny", mechanisms=load_market_config("default")["mechanisms"], **overrides)


@pytest.fixture(scope="module")
def mech_market(tmp_path_factory):
    return build_market(tiny_with_mechanisms(), tmp_path_factory.mktemp("mech") / "qlib_data", progress=False)


def test_presets_carry_the_knobs():
    for preset in ("default", "full"):
        m = load_market_config(preset)["mechanisms"]
        assert {"spreads", "unwind", "alpha_noise", "tails", "size_tilt"} <= set(m)


def test_an_empty_section_builds_the_same_bytes(tmp_path):
    """Mechanisms that are all off leave the market as it was (``alpha_noise.sd`` 0 multiplies by 1)."""
    cfg = micro_config()
    cfg.pop("mechanisms", None)
    plain = build_market(cfg, tmp_path / "plain", progress=False)
    off = build_market(dict(cfg, mechanisms={"alpha_noise": {"sd": 0.0}}), tmp_path / "off", progress=False)

    def digest(root):
        return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.bin"))}

    assert digest(plain) == digest(off)
    assert not (plain / "meta" / "planted_alpha_daily.csv").exists()
    assert (off / "meta" / "planted_alpha_daily.csv").exists()


def test_packaged_spread_targets_are_derived_from_the_fixture(realdata):
    from qlib_ext.data.synth.spreads import fixture_panels

    daily = daily_spreads(*fixture_panels(realdata))
    packed = read_spread_targets().set_index(["window", "spread"])["value"]
    got = pd.concat([window_sums(daily, CRASH_WINDOWS, list(DECILES)).stack(),
                     window_sums(daily, STYLE_WINDOWS, ["size_q", "liq_q"]).stack()])
    assert np.allclose(got.loc[packed.index].to_numpy(), packed.to_numpy(), atol=1e-4)
    # the reading of the crash: small and oversold fell, low vol / low turnover held up, then lagged
    assert packed["crash", "size"] < -0.05 and packed["crash", "reversal"] < -0.05
    assert packed["crash", "low_vol"] > 0 and packed["rebound", "low_turn"] < -0.05


def test_alpha_noise_is_a_persistent_monthly_process():
    days = pd.bdate_range("2017-01-02", "2024-03-29")
    mult = pd.Series(monthly_noise(days, 0.9, 0.5, seed=1), index=days)
    months = mult.resample("ME").first()
    assert (mult.groupby(days.to_period("M")).nunique() == 1).all()
    assert 0.03 < (months < 0).mean() < 0.35
    assert abs(months.mean() - 1) < 0.35 and 0.6 < months.std() < 1.2
    assert months.autocorr() > 0.2


def test_unwind_takes_back_the_configured_months():
    days = pd.bdate_range("2024-01-02", "2024-02-29")
    m = Mechanisms({"unwind": {"start": "2024-02-05", "end": "2024-02-07", "months": 1.0}}, days, seed=1)
    inside = [m.strength_mult(t) for t, d in enumerate(days) if pd.Timestamp("2024-02-05") <= d <= pd.Timestamp("2024-02-07")]
    assert inside == [-7.0] * 3
    assert m.strength_mult(0) == 1.0


def test_tails_permute_within_the_tails_only():
    rng = np.random.default_rng(0)
    n = 400
    signal, size = rng.standard_normal(n), rng.standard_normal(n)
    mask = np.ones(n, dtype=bool)
    days = pd.bdate_range("2024-01-02", periods=5)
    m = Mechanisms({"tails": {"top": 0.3, "bottom": 8.0, "k": 0.5}}, days, seed=1)
    plain = Mechanisms({"alpha_noise": {"sd": 0.0}}, days, seed=1).shape_signal(0, signal, size, mask)
    out = m.shape_signal(0, signal, size, mask)
    k = 0.5 * plain.std()
    for tail in (plain > k, plain < -k):
        assert np.allclose(np.sort(out[tail]), np.sort(plain[tail]))
    top, bottom = out >= np.quantile(out, 0.95), out <= np.quantile(out, 0.05)
    assert size[top].mean() < size[plain >= np.quantile(plain, 0.95)].mean()
    assert size[bottom].mean() > 1.0
    assert abs(out @ size) / n < 1e-9


def test_mechanism_facts_inside_their_tolerances(mech_market):
    """Issue 21's factor-level facts on a tiny-sized build with the knobs on (bench/synth.py prints them)."""
    facts = mechanism_facts(mech_market)
    assert facts.index.str.startswith("spread:crash:").sum() == 4
    assert facts.index.str.startswith("spread:rebound:").sum() == 4
    assert facts.index.str.startswith("spread:").sum() == 4 + 4 + 14
    assert set(MECHANISM_TARGETS) <= set(facts.index)
    bad = facts[~facts["ok"]]
    assert bad.empty, bad


def test_index_paths_stay_on_the_real_closes(mech_market):
    path = path_facts(mech_market)
    assert path["ok"].all(), path[~path["ok"]]
