"""The stage cache: an unchanged stage is skipped, a stage whose config changed reruns and so does
everything downstream of it; a stage that raised leaves no manifest and reruns."""

from __future__ import annotations

import json

import pytest

from qlib_ext.pipeline.cache import StageCache, config_hash


def _chain(cache: StageCache, calls: list, a_cfg: dict, b_cfg: dict, c_cfg: dict, tmp_path):
    """Three chained stages a -> b -> c, each writing a file, inputs keyed by the upstream key."""
    def stage(name, value):
        def fn():
            calls.append(name)
            path = tmp_path / f"{name}.txt"
            path.write_text(str(value))
            return {"path": str(path), "value": value}
        return fn

    exists = lambda o: (tmp_path / f"{o['path'].rsplit('/', 1)[-1]}").is_file()  # noqa: E731
    a = cache.run("a", stage("a", a_cfg["x"]), config=a_cfg, exists=exists)
    b = cache.run("b", stage("b", a.outputs["value"] + b_cfg["y"]), config=b_cfg, inputs={"a": a.key}, exists=exists)
    c = cache.run("c", stage("c", b.outputs["value"] * c_cfg["z"]), config=c_cfg, inputs={"b": b.key}, exists=exists)
    return a, b, c


def test_skips_unchanged_and_reruns_changed(tmp_path):
    logs: list[str] = []
    cache = StageCache(tmp_path / "stages", log=logs.append)
    calls: list[str] = []
    a, b, c = _chain(cache, calls, {"x": 1}, {"y": 2}, {"z": 3}, tmp_path)
    assert calls == ["a", "b", "c"] and c.outputs["value"] == (1 + 2) * 3
    assert not any(r.cached for r in (a, b, c))

    calls.clear()
    a2, b2, c2 = _chain(StageCache(tmp_path / "stages", log=logs.append), calls, {"x": 1}, {"y": 2}, {"z": 3}, tmp_path)
    assert calls == [] and all(r.cached for r in (a2, b2, c2))
    assert (a2.key, b2.key, c2.key) == (a.key, b.key, c.key) and c2.outputs["value"] == 9

    calls.clear()  # b's config changes: b and its downstream c rerun, a is skipped
    a3, b3, c3 = _chain(StageCache(tmp_path / "stages", log=logs.append), calls, {"x": 1}, {"y": 5}, {"z": 3}, tmp_path)
    assert calls == ["b", "c"] and a3.cached and not b3.cached and not c3.cached
    assert c3.outputs["value"] == (1 + 5) * 3 and b3.key != b.key and c3.key != c.key
    assert json.loads((tmp_path / "stages" / "b.json").read_text())["key"] == b3.key

    calls.clear()  # an output removed by hand: that stage reruns although its key is unchanged
    (tmp_path / "c.txt").unlink()
    _chain(StageCache(tmp_path / "stages", log=logs.append), calls, {"x": 1}, {"y": 5}, {"z": 3}, tmp_path)
    assert calls == ["c"]
    assert any("outputs missing" in m for m in logs) and any("config or inputs changed" in m for m in logs)


def test_failed_stage_leaves_no_manifest(tmp_path):
    cache = StageCache(tmp_path / "stages", log=lambda m: None)

    def boom():
        raise RuntimeError("stage failed")

    with pytest.raises(RuntimeError, match="stage failed"):
        cache.run("s", boom, config={"k": 1})
    assert cache.manifest("s") is None
    calls = []
    cache.run("s", lambda: calls.append(1) or {"ok": True}, config={"k": 1})
    assert calls == [1] and cache.manifest("s")["outputs"] == {"ok": True}


def test_config_hash_is_canonical():
    assert config_hash({"a": 1, "b": [1, 2.0, None]}) == config_hash({"b": [1, 2.0, None], "a": 1})
    assert config_hash({"a": 1.0}) != config_hash({"a": 1.5})
    assert config_hash({"a": (1, 2)}) == config_hash({"a": [1, 2]})
    assert config_hash({"a": {"x": None}}) != config_hash({"a": {}})
