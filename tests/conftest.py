"""Shared fixtures: synthetic markets built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from qlib_ext.data.synth import build_market, load_market_config

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"


def micro_config(**overrides) -> dict:
    """A very small market (40 stocks, ~10 months, 5 minute sessions) for tests that copy or corrupt it."""
    cfg = load_market_config(
        "tiny", name="micro", n_stocks=40, start="2023-05-04", end="2024-03-29", minute_window=5,
        index_bands={"csi300": 4, "csi500": 6, "csi1000": 10},
    )
    cfg.update(overrides)
    return cfg


@pytest.fixture(scope="session")
def tiny_market(tmp_path_factory) -> Path:
    """The `tiny` preset (120 stocks, 2020-10..2024-03, minute bars every day)."""
    return build_market("tiny", tmp_path_factory.mktemp("tiny") / "qlib_data", progress=False)


@pytest.fixture(scope="session")
def micro_market(tmp_path_factory) -> Path:
    """A 40-stock market that builds in about a second; copy it before corrupting it."""
    return build_market(micro_config(), tmp_path_factory.mktemp("micro") / "qlib_data", progress=False)


@pytest.fixture(scope="session")
def realdata() -> Path:
    """The real A-share fixture beside the checkout; skips when it is absent."""
    if not (REALDATA / "daily.parquet").exists():
        pytest.skip(f"real-data fixture not found at {REALDATA}")
    return REALDATA


@pytest.fixture(autouse=True)
def _end_leaked_experiment():
    """End an MLflow experiment a test left active (Qlib's LGBModel.fit starts one through R.log_metrics
    when no recorder is active), so the next test's ``qlib.init`` is not refused."""
    yield
    try:
        from qlib.workflow import R

        expm = R.exp_manager
    except Exception:  # Qlib never initialised in this process: nothing can be active
        return
    if getattr(expm, "active_experiment", None) is not None:
        R.end_exp(recorder_status="FINISHED")
