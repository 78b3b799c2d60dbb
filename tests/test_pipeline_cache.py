"""The stage cache: an unchanged stage is skipped, a stage whose config (or code version) changed reruns
and so does everything downstream of it; a stage is a transaction (a failure leaves the previous
folder, a changed file is not adopted)."""

from __future__ import annotations

import pytest

from qlib_ext.pipeline.cache import MANIFEST, StageCache, config_hash


def _chain(cache: StageCache, calls: list, a_cfg: dict, b_cfg: dict, c_cfg: dict, code: int = 1):
    """Three chained stages a -> b -> c, each writing a file into its stage folder, keyed by the upstream key."""
    def stage(name, value):
        def fn(folder):
            calls.append(name)
            (folder / "out.txt").write_text(str(value))
            return {"file": "out.txt", "value": value}
        return fn

    a = cache.run("a", stage("a", a_cfg["x"]), config=a_cfg)
    b = cache.run("b", stage("b", a.outputs["value"] + b_cfg["y"]), config=b_cfg, inputs={"a": a.key}, code=code)
    c = cache.run("c", stage("c", b.outputs["value"] * c_cfg["z"]), config=c_cfg, inputs={"b": b.key})
    return a, b, c


def test_skips_unchanged_and_reruns_changed(tmp_path):
    logs: list[str] = []
    folder = tmp_path / "stages"
    calls: list[str] = []
    a, b, c = _chain(StageCache(folder, log=logs.append), calls, {"x": 1}, {"y": 2}, {"z": 3})
    assert calls == ["a", "b", "c"] and c.outputs["value"] == (1 + 2) * 3 and c.path("file").read_text() == "9"
    assert not any(r.cached for r in (a, b, c))

    calls.clear()
    a2, b2, c2 = _chain(StageCache(folder, log=logs.append), calls, {"x": 1}, {"y": 2}, {"z": 3})
    assert calls == [] and all(r.cached for r in (a2, b2, c2))
    assert (a2.key, b2.key, c2.key) == (a.key, b.key, c.key)

    calls.clear()  # b's config changes: b and its downstream c rerun, a is skipped
    a3, b3, c3 = _chain(StageCache(folder, log=logs.append), calls, {"x": 1}, {"y": 5}, {"z": 3})
    assert calls == ["b", "c"] and a3.cached and c3.outputs["value"] == 18 and b3.key != b.key

    calls.clear()  # b's code version changes: b and c rerun
    _chain(StageCache(folder, log=logs.append), calls, {"x": 1}, {"y": 5}, {"z": 3}, code=2)
    assert calls == ["b", "c"]

    calls.clear()  # a file changed by hand: that stage reruns although its key is unchanged
    (folder / "c" / "out.txt").write_text("18 (edited)")
    _chain(StageCache(folder, log=logs.append), calls, {"x": 1}, {"y": 5}, {"z": 3}, code=2)
    assert calls == ["c"] and (folder / "c" / "out.txt").read_text() == "18"
    assert any("changed since the stage wrote it" in m for m in logs)
    assert any("config, inputs or code changed" in m for m in logs)


def test_failed_stage_keeps_the_previous_folder_and_leaves_no_temp(tmp_path):
    cache = StageCache(tmp_path / "stages", log=lambda m: None)
    cache.run("s", lambda f: (f / "x").write_text("good") and {"x": "x"}, config={"k": 1})

    def half_then_boom(folder):
        (folder / "x").write_text("half")
        raise RuntimeError("stage failed")

    with pytest.raises(RuntimeError, match="stage failed"):
        cache.run("s", half_then_boom, config={"k": 2})
    assert (tmp_path / "stages" / "s" / "x").read_text() == "good"
    assert sorted(p.name for p in (tmp_path / "stages").iterdir()) == ["s"]
    calls = []
    again = StageCache(tmp_path / "stages", log=lambda m: None).run("s", lambda f: calls.append(1) or {},
                                                                    config={"k": 1})
    assert calls == [] and again.cached  # the first config's outputs are still the adopted ones
    assert (tmp_path / "stages" / "s" / MANIFEST).is_file()


def test_config_hash_is_canonical():
    assert config_hash({"a": 1, "b": [1, 2.0, None]}) == config_hash({"b": [1, 2.0, None], "a": 1})
    assert config_hash({"a": 1.0}) != config_hash({"a": 1.5})
    assert config_hash({"a": (1, 2)}) == config_hash({"a": [1, 2]})
    assert config_hash({"a": {"x": None}}) != config_hash({"a": {}})


def test_cpu_time_counts_the_stage_and_its_child_processes_and_is_kept_on_adoption(tmp_path):
    """A stage's CPU time (robust to a busy machine where wall time is not) covers its own work and the
    processes it starts; a sleeping stage shows wall time but almost no CPU; an adopted stage reports the
    CPU time of the run that made it."""
    import subprocess
    import sys
    import time

    def spin(folder):
        subprocess.run([sys.executable, "-c", "import time\nt=time.process_time()\nwhile time.process_time()-t<0.6: pass"],
                       check=True)
        t = time.process_time()
        while time.process_time() - t < 0.3:
            pass
        return {}

    def nap(folder):
        time.sleep(0.5)
        return {}

    cache = StageCache(tmp_path / "stages", log=lambda _m: None)
    busy, idle = cache.run("busy", spin, config={}), cache.run("idle", nap, config={})
    assert busy.cpu_seconds >= 0.85 and busy.seconds >= 0.85
    assert idle.seconds >= 0.5 and idle.cpu_seconds < 0.2
    again = StageCache(tmp_path / "stages", log=lambda _m: None).run("busy", spin, config={})
    assert again.cached and again.cpu_seconds == busy.cpu_seconds
