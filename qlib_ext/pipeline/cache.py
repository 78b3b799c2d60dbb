"""Content-addressed stage cache: a stage reruns only when its inputs or its resolved config change.

A stage's **key** is ``sha256(canonical JSON of {name, config, inputs})`` where ``inputs`` are the
keys of the stages it reads (so a change upstream propagates down the chain) and fingerprints of
external inputs (a dataset directory not built by us: :func:`dir_fingerprint`).  After a stage
succeeds its manifest ``<cache>/<name>.json`` records the key, the outputs (paths, ids, numbers)
and the wall time; a rerun with the same key and outputs that still exist is skipped.  A manifest is
written atomically, only after the stage finished, so a killed run reruns the stage it was in.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST_VERSION = 1


def _canonical(obj: Any) -> Any:
    """A JSON-able canonical form: mappings sorted, tuples as lists, paths and numbers as text."""
    if isinstance(obj, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float):
        return repr(obj)
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    return repr(obj)


def config_hash(obj: Any, length: int = 16) -> str:
    """Hex digest (first ``length`` chars) of the canonical JSON of ``obj``: same config, same hash."""
    text = json.dumps(_canonical(obj), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def file_hash(path: str | Path, length: int = 16) -> str:
    """Hex digest of a file's bytes (for a signal or a config file read by a stage)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:length]


def dir_fingerprint(root: str | Path, probes: Sequence[str] = ("calendars/day.txt", "instruments/all.txt",
                                                                 "meta/market.yaml", "risk/meta.json")) -> str:
    """A cheap fingerprint of a dataset directory: size and mtime of its calendar, instruments and metas."""
    root = Path(root)
    stats = {}
    for rel in probes:
        p = root / rel
        if p.exists():
            st = p.stat()
            stats[rel] = [st.st_size, int(st.st_mtime)]
    return config_hash({"root": str(root.resolve()), "stats": stats})


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Write JSON to ``path`` through a temp file and a rename (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True, default=str))
    os.replace(tmp, path)


@dataclass
class StageResult:
    """What a stage produced: its key, outputs (JSON-able), wall time, and whether it came from the cache."""

    name: str
    key: str
    outputs: dict
    seconds: float
    cached: bool
    peak_rss_mb: float | None = None


@dataclass
class StageCache:
    """Manifests of finished stages in ``folder`` (one ``<name>.json`` each); see the module docstring."""

    folder: Path
    log: Callable[[str], None] = print
    results: dict[str, StageResult] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.folder = Path(self.folder)

    def manifest(self, name: str) -> dict | None:
        path = self.folder / f"{name}.json"
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def key(self, name: str, config: Any, inputs: Mapping[str, str] | None = None) -> str:
        return config_hash({"v": MANIFEST_VERSION, "name": name, "config": config, "inputs": dict(inputs or {})})

    def run(self, name: str, fn: Callable[[], dict], config: Any, inputs: Mapping[str, str] | None = None,
            exists: Callable[[dict], bool] | None = None, force: bool = False) -> StageResult:
        """Run ``fn`` (returns the outputs dict) unless a manifest with the same key exists and ``exists(outputs)``."""
        key = self.key(name, config, inputs)
        old = self.manifest(name)
        if not force and old is not None and old.get("key") == key and (exists is None or exists(old["outputs"])):
            res = StageResult(name, key, old["outputs"], float(old.get("seconds", 0.0)), True,
                              old.get("peak_rss_mb"))
            self.log(f"[{name}] unchanged (key {key}): skipped, cached from a run of {res.seconds:.0f} s")
            self.results[name] = res
            return res
        why = "no cached run" if old is None else ("forced" if force else
                                                    "config or inputs changed" if old.get("key") != key
                                                    else "outputs missing")
        self.log(f"[{name}] running ({why}; key {key}) ...")
        t0 = time.perf_counter()
        outputs = fn() or {}
        seconds = time.perf_counter() - t0
        rss = peak_rss_mb()
        write_json_atomic(self.folder / f"{name}.json", {"key": key, "name": name, "outputs": outputs,
                                                          "seconds": seconds, "peak_rss_mb": rss,
                                                          "config": _canonical(config),
                                                          "inputs": dict(inputs or {}),
                                                          "finished": time.strftime("%Y-%m-%dT%H:%M:%S")})
        self.log(f"[{name}] done in {seconds:.1f} s (peak RSS so far {rss:.0f} MiB)")
        res = StageResult(name, key, outputs, seconds, False, rss)
        self.results[name] = res
        return res


def peak_rss_mb() -> float:
    """Peak resident set size of this process and its waited-for children, in MiB (Linux ru_maxrss is KiB)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024.0
