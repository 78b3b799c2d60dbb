"""Reruns that must be deterministic (synthetic market, risk store, minute factors, import) and an
interrupted minute-factor build that resumes to the same bytes.  The optimizer's rerun is in
``test_reliability_optim.py``, the importer's in ``test_reliability_import.py``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from qlib_ext.data import fields as fields_mod
from qlib_ext.data.synth import build_market
from qlib_ext.ops import build as build_mod
from qlib_ext.ops import build_minute_factors
from qlib_ext.risk import build_risk

from .helpers import digest, disk_full
from conftest import micro_config

DAY_ONLY = shutil.ignore_patterns("*.1min.bin", "1min.txt")
NAMES = ["rskew", "corr_vr", "rvol"]


def test_synth_same_seed_same_bytes_for_every_file(micro_market, tmp_path):
    """Every file but the writer's marker, whose build token names each write on purpose (a dataset
    rewritten in place gets a new identity, so no cache keyed on it adopts the old one's results)."""
    from qlib_ext.data.bin_io import MARKER

    again = build_market(micro_config(), tmp_path / "again", progress=False)
    a, b = digest(again), digest(micro_market)
    assert MARKER in a and json.loads((again / MARKER).read_text())["build"] != \
        json.loads((micro_market / MARKER).read_text())["build"]
    assert {k: v for k, v in a.items() if k != MARKER} == {k: v for k, v in b.items() if k != MARKER}


def test_risk_store_rerun_same_bytes(micro_market, tmp_path):
    stores = []
    for k in range(2):
        data = Path(shutil.copytree(micro_market, tmp_path / f"d{k}", ignore=DAY_ONLY))
        stores.append(build_risk(data, progress=False))
    a, b = (digest(s) for s in stores)
    assert a.keys() == b.keys() and "exposures.parquet" in a
    assert {k: v for k, v in a.items() if k != "meta.json"} == {k: v for k, v in b.items() if k != "meta.json"}
    metas = [json.loads((s / "meta.json").read_text()) for s in stores]
    for m in metas:
        m.pop("built_at"), m.pop("dataset")
    assert metas[0] == metas[1]


def _mf(root: Path) -> dict:
    return {k: v for k, v in digest(root, "features").items() if "/mf_" in k}


@pytest.fixture(scope="module")
def mf_reference(micro_market, tmp_path_factory) -> dict:
    root = Path(shutil.copytree(micro_market, tmp_path_factory.mktemp("mf") / "ref", ignore=DAY_ONLY))
    build_minute_factors(root, progress=False, names=NAMES)
    return _mf(root)


def test_minute_factors_rerun_and_other_chunking_same_bytes(micro_market, mf_reference, tmp_path):
    root = Path(shutil.copytree(micro_market, tmp_path / "ds", ignore=DAY_ONLY))
    others = digest(root, "features")
    build_minute_factors(root, progress=False, names=NAMES, stocks_per_chunk=7, days_per_chunk=30)
    assert mf_reference and _mf(root) == mf_reference
    now = digest(root, "features")
    assert {k: now[k] for k in others} == others, "an existing field was modified"


def test_minute_factors_disk_full_while_staging_resumes_to_the_same_bytes(micro_market, mf_reference, tmp_path,
                                                                          monkeypatch):
    root = Path(shutil.copytree(micro_market, tmp_path / "ds", ignore=DAY_ONLY))
    chunks = {"stocks_per_chunk": 40, "days_per_chunk": 40}
    monkeypatch.setattr(fields_mod.os, "replace", disk_full(3, fields_mod.os.replace))   # 4th chunk fails
    with pytest.raises(OSError, match="No space left"):
        build_minute_factors(root, progress=False, names=NAMES, **chunks)
    monkeypatch.undo()
    assert not _mf(root), "mf_* fields appeared before the build finished"
    job = next((root / ".staging").iterdir())
    assert len(list(job.glob("*.done"))) == 3
    done = {p.stem for p in job.glob("*.done")}
    computed = []
    real = build_mod.compute_chunk
    monkeypatch.setattr(build_mod, "compute_chunk", lambda src, chunk, *a, **k: computed.append(chunk.key)
                        or real(src, chunk, *a, **k))
    build_minute_factors(root, progress=False, names=NAMES, **chunks)
    assert computed and not done & set(computed)            # finished chunks are not computed again
    assert _mf(root) == mf_reference and not (root / ".staging").exists()
