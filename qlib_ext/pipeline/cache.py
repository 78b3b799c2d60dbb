"""Transactional, content-addressed stage cache: a stage reruns only when its identity changes.

A stage's **identity** (its key) is ``sha256(canonical JSON of {name, config, inputs, code, package})``:
its resolved config, the keys of the stages it reads (so a change upstream propagates down the
chain), a per-stage code version (bumped when the stage's computation changes) and the package
version.  Nothing in it depends on whether an input was built by this run or found on disk.

A stage is a **transaction**: it writes its files into a fresh folder ``<cache>/.<name>.tmp-<pid>-*``;
only after it returned and its manifest (key, outputs, the size and sha256 of every file it wrote,
wall and CPU time, peak RSS) is written there does the folder replace ``<cache>/<name>/`` (:func:`qlib_ext.files.swap_dir`).
A killed or failed stage leaves only a temp folder (removed by the next run once its pid is gone)
and the previous stage folder untouched.  A rerun **adopts** a stage only when the manifest's key
matches and every recorded file verifies (size and hash) and ``exists(outputs)`` holds for outputs
kept outside the folder (a risk store, MLflow runs).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.tempdirs import make_temp_dir, sweep
from ..files import swap_dir, write_json_atomic

MANIFEST_VERSION = 2
MANIFEST = "manifest.json"

__all__ = ["StageCache", "StageResult", "config_hash", "file_hash", "dir_fingerprint", "write_json_atomic",
           "peak_rss_mb", "cpu_seconds", "MANIFEST"]


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
    """A content fingerprint of a folder's small identifying files (hashes of ``probes`` that exist)."""
    root = Path(root)
    return config_hash({rel: file_hash(root / rel) for rel in probes if (root / rel).is_file()})


def _files(folder: Path) -> dict[str, dict]:
    """``{relative path: {"size", "sha256"}}`` of every file under ``folder`` but the manifest."""
    return {str(p.relative_to(folder)): {"size": p.stat().st_size, "sha256": file_hash(p, 64)}
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}


@dataclass
class StageResult:
    """What a stage produced: key, outputs (JSON-able), its folder, wall and CPU time, whether it was adopted."""

    name: str
    key: str
    outputs: dict
    seconds: float
    cached: bool
    peak_rss_mb: float | None = None
    dir: Path | None = None
    cpu_seconds: float | None = None

    def path(self, output: str) -> Path:
        """The file of output ``output`` (a name relative to the stage folder)."""
        if self.dir is None:
            raise ValueError(f"stage {self.name} keeps no files")
        return self.dir / self.outputs[output]


@dataclass
class StageCache:
    """Stage folders ``<folder>/<name>/`` with their manifests; see the module docstring."""

    folder: Path
    log: Callable[[str], None] = print
    results: dict[str, StageResult] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.folder = Path(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        for prefix in sorted({m.group(1) for p in self.folder.iterdir()
                              if (m := re.match(r"^(\..+\.(?:tmp|old)-)\d+-", p.name))}):
            target = self.folder / prefix[1:].rsplit(".", 1)[0]
            sweep(self.folder, prefix, "stage temp folder", restore_to=target if ".old-" in prefix else None)

    def manifest(self, name: str) -> dict | None:
        """The manifest of the adopted stage ``name``, None when there is none (or it is unreadable)."""
        path = self.folder / name / MANIFEST
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def key(self, name: str, config: Any, inputs: Mapping[str, str] | None = None, code: int | str = 1) -> str:
        """The stage's identity (module docstring)."""
        from .. import __version__

        return config_hash({"v": MANIFEST_VERSION, "name": name, "config": config, "inputs": dict(inputs or {}),
                            "code": code, "package": __version__})

    def _verify(self, name: str, manifest: dict) -> str | None:
        """Why the stage folder does not match its manifest (a missing or changed file), None when it does."""
        folder = self.folder / name
        for rel, want in (manifest.get("files") or {}).items():
            p = folder / rel
            if not p.is_file():
                return f"{rel} missing"
            if p.stat().st_size != want["size"] or file_hash(p, 64) != want["sha256"]:
                return f"{rel} changed since the stage wrote it"
        return None

    def run(self, name: str, fn: Callable[[Path], dict], config: Any, inputs: Mapping[str, str] | None = None,
            code: int | str = 1, exists: Callable[[dict], bool] | None = None, force: bool = False,
            seconds: float | None = None, cpu: float | None = None) -> StageResult:
        """Adopt stage ``name`` when its key and files verify, else run ``fn(folder)`` as a transaction.

        ``fn`` writes its files into ``folder`` (a fresh temp folder) and returns the outputs dict (file
        outputs as names relative to the folder).  ``seconds``: the stage's wall time when its work was
        done before the call (the market, whose key is known only once the dataset exists); ``cpu``: its
        CPU time likewise.
        """
        key = self.key(name, config, inputs, code)
        old = self.manifest(name)
        why = "no cached run"
        if old is not None:
            if force:
                why = "forced"
            elif old.get("key") != key:
                why = "config, inputs or code changed"
            else:
                bad = self._verify(name, old)
                if bad is None and exists is not None and not exists(old["outputs"]):
                    bad = "outputs outside the stage folder missing"
                if bad is None:
                    res = StageResult(name, key, old["outputs"], float(old.get("seconds", 0.0)), True,
                                      old.get("peak_rss_mb"), self.folder / name, old.get("cpu_seconds"))
                    self.log(f"[{name}] unchanged (key {key}): skipped, cached from a run of {res.seconds:.0f} s")
                    self.results[name] = res
                    return res
                why = bad
        self.log(f"[{name}] running ({why}; key {key}) ...")
        tmp = make_temp_dir(self.folder, f".{name}.tmp-")
        try:
            t0, c0 = time.perf_counter(), cpu_seconds()
            outputs = fn(tmp) or {}
            seconds = (time.perf_counter() - t0) + (seconds or 0.0)
            cpu = (cpu_seconds() - c0) + (cpu or 0.0)
            rss = peak_rss_mb()
            write_json_atomic(tmp / MANIFEST, {
                "key": key, "name": name, "outputs": outputs, "files": _files(tmp), "seconds": seconds,
                "cpu_seconds": cpu, "peak_rss_mb": rss, "config": _canonical(config), "inputs": dict(inputs or {}), "code": code,
                "finished": time.strftime("%Y-%m-%dT%H:%M:%S")})
            swap_dir(tmp, self.folder / name)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.log(f"[{name}] done in {seconds:.1f} s wall, {cpu:.1f} s CPU (peak RSS so far {rss:.0f} MiB)")
        res = StageResult(name, key, outputs, seconds, False, rss, self.folder / name, cpu)
        self.results[name] = res
        return res


def cpu_seconds() -> float:
    """CPU time (user + system) of this process, its waited-for children and its live ones, in seconds.

    Robust to a busy machine where wall time is not: a stage's CPU time is the difference of two calls.
    A live child's time counts while it runs; once it has ended and been waited for it counts through
    ``RUSAGE_CHILDREN`` (a child that ends between the two calls without being waited for is missed).
    """
    import resource

    import psutil

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
    for child in psutil.Process().children(recursive=True):
        try:
            t = child.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def peak_rss_mb() -> float:
    """Peak resident set size of this process and its waited-for children, in MiB (Linux ru_maxrss is KiB)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024.0
