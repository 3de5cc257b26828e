"""A cache of checks across runs, keyed by code and versions.

A user works in a loop (change the layer or the grid, run, read, change again), and
most of what a run checks depends only on code, versions and the point: the
capability matrix of a layer, gradcheck of a baseline, per variant the setup
pass's deviation against the float64 reference, peak memory and the output's
``returns`` check, and the breakdown pass's profile of where a call's time goes (an
explanation beside the verdicts, which nothing decides on). Those are kept here and
served to the next run; nothing timed is (every timed round runs in full, every run;
a cached loop calibration is only checked again in the warm-up round).

Where: ``cache_root()``, that is ``$HARNESS_CACHE_DIR`` if set, else
``$XDG_CACHE_HOME/port-harness`` (default ``~/.cache/port-harness``), or the run's
``--cache-dir``. Inside it::

    checks/<kind>/<ab>/<digest>.json   one entry per key (this module)
    onnx/<layer>-<impl>-<digest>/      exported ONNX models (harness.forms)
    inductor/<digest>/                 torch's compile caches (TORCHINDUCTOR_CACHE_DIR),
                                       one folder per torch, Python and CPU capability,
                                       with the ISA probes that loaded (harness.toolchain)

A *key* is a JSON object: the check's kind and version, ``environment_key()`` (the
harness's version and a hash of the source of its modules that run checks,
``CHECK_MODULES``, the versions of Python, torch, NumPy,
SciPy, onnx and onnxruntime, the CPU capability), a hash of the layer's source
(``code_hash``: every file its declaration's callables come from, and the user's
files those import, transitively) and what the check ran on (point, dtype, device,
threads, seed, ...). The entry's file is named by the key's SHA-256, and holds the key
itself, the value and a checksum of both: an entry whose checksum or key does not
match (a torn or edited file) is never trusted; it is removed and the check is
recomputed, with a note (``Lookup.note``).

Writes are atomic (a temporary file in the same folder, then ``os.replace``): two
processes writing one key at once leave one complete entry, the last one's. Readers
never see a partial file. Concurrent runs and shards may share one cache.

Bounded: ``Store.evict`` removes the least recently used items (an entry file, an
ONNX model's folder, an inductor folder; a hit refreshes an entry's time) until the
cache holds at most ``limit_bytes`` (``DEFAULT_LIMIT_BYTES``, 2 GiB, or
``$HARNESS_CACHE_LIMIT_MB``); the runner evicts at the end of each run.
``python -m harness cache info|clear`` reports on it and empties it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import inspect
import json
import os
import platform
import shutil
import sys
import sysconfig
import time
import types
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.atomic import atomic_write_bytes

__all__ = [
    "CACHE_ENV",
    "CHECKS",
    "CHECK_MODULES",
    "DEFAULT_LIMIT_BYTES",
    "CacheInfo",
    "Checks",
    "Lookup",
    "Store",
    "cache_root",
    "cache_summary",
    "code_files",
    "code_hash",
    "environment_key",
    "files_hash",
    "fmt_bytes",
    "inductor_dir",
]

CACHE_ENV = "HARNESS_CACHE_DIR"
LIMIT_ENV = "HARNESS_CACHE_LIMIT_MB"
DEFAULT_LIMIT_BYTES = 2 * 1024**3
#: The version of each cached check: bump one when what it computes changes.
#: Each check's version, part of its key: bumped when what it computes changes (setup 3:
#: loop calibration starts with a value of 2 calls, harness.measure.calibrate_loops;
#: breakdown 2: a Function's forward and backward bodies are parts of kind ``code``;
#: gradcheck 2: masked for sparse inputs, not run past ``checks.MAX_JACOBIAN``;
#: capabilities 2: ``compile_fullgraph`` compiles the backward too; gradcheck 3 and
#: setup 4: a layer that writes into its input or is random is found; gradcheck 4: the
#: reference is gradchecked too; gradcheck 5 and setup 5: a backward that writes into
#: its inputs or its upstream gradient is found, and a baseline's forward alternating
#: with torch's ops is probed; capabilities 3: NaN where eager has NaN
#: agrees, and a function of arrays is told why TorchScript cannot take it).
CHECKS: dict[str, int] = {
    "validate": 1,
    "capabilities": 3,
    "gradcheck": 5,
    "setup": 5,
    "breakdown": 2,
}
_ENTRY_SCHEMA = 1
_PACKAGES = ("port-harness", "torch", "numpy", "scipy", "onnx", "onnxruntime", "onnxscript")
#: The top-level modules of the versioned packages (the harness's own is walked apart).
_VERSIONED_TOPS = frozenset({"torch", "numpy", "scipy", "onnx", "onnxruntime", "onnxscript"})
_TOP_FOLDERS = ("checks", "onnx", "inductor")


def cache_root(override: str | os.PathLike[str] | None = None) -> Path:
    """The cache's folder: ``override`` (``--cache-dir``), else ``$HARNESS_CACHE_DIR``,
    else ``$XDG_CACHE_HOME/port-harness`` (``~/.cache/port-harness``)."""
    if override:
        return Path(override)
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "port-harness"
    )
    return Path(root)


def _digest(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def inductor_dir(root: Path, torch_version: str, cpu_capability: str) -> Path:
    """torch's compile caches for one torch, Python and CPU capability (torch keys its
    own entries by graph and config; the folder keeps versions apart, so that a new
    torch starts a new folder and ``evict`` drops the old one whole)."""
    key = {
        "torch": torch_version,
        "python": platform.python_version(),
        "cpu": cpu_capability,
        "machine": platform.machine(),
    }
    return root / "inductor" / _digest(key)[:16]


# ------------------------------------------------------------------------------- keys


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def files_hash(paths: Iterable[str | os.PathLike[str]]) -> str:
    """SHA-256 of the named files' contents (sorted by path; a missing file counts as
    missing, not as an error)."""
    h = hashlib.sha256()
    for path in sorted({str(p) for p in paths}):
        h.update(path.encode() + b"\0")
        try:
            h.update(Path(path).read_bytes())
        except OSError:
            h.update(b"<missing>")
        h.update(b"\0")
    return h.hexdigest()


#: The harness modules whose code computes (or keys) a cached check: an edit to one of
#: them invalidates every entry. The others (runner, report, ...) do not change a
#: check's outcome.
CHECK_MODULES = (
    "breakdown",
    "cache",
    "capabilities",
    "checks",
    "contention",
    "deviation",
    "dtypes",
    "errors",
    "forms",
    "layer",
    "measure",
    "memory",
    "outputs",
    "points",
    "prepared",
    "profile_call",
    "registry",
    "ufuncs",
    "worker",
)


def _harness_files() -> list[Path]:
    here = Path(__file__).resolve().parent
    return [here / f"{name}.py" for name in CHECK_MODULES]


_ENV_CACHE: dict[str, dict[str, str]] = {}


def environment_key(cpu_capability: str) -> dict[str, str]:
    """What every entry's key holds about the code and machine around the check: the
    harness's version and a hash of its modules' source, the versions of Python,
    torch, NumPy, SciPy, onnx, onnxscript and onnxruntime, the CPU capability."""
    if cpu_capability not in _ENV_CACHE:
        key = {name: _version(name) for name in _PACKAGES}
        key["harness_source"] = files_hash(_harness_files())[:16]
        key["python"] = platform.python_version()
        key["machine"] = platform.machine()
        key["cpu_capability"] = cpu_capability
        _ENV_CACHE[cpu_capability] = key
    return dict(_ENV_CACHE[cpu_capability])


def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    roots |= {sys.prefix, sys.base_prefix, sys.exec_prefix}
    return tuple(os.path.realpath(r) + os.sep for r in roots)


def _module_of(obj: Any) -> types.ModuleType | None:
    if isinstance(obj, types.ModuleType):
        return obj
    name = getattr(obj, "__module__", None)
    return sys.modules.get(name) if isinstance(name, str) else None


def _source_file(obj: Any) -> str | None:
    with contextlib.suppress(TypeError, OSError):
        found = inspect.getsourcefile(obj)
        if found:
            return os.path.realpath(found)
    return None


def code_files(objects: Iterable[Any], files: Iterable[str] = ()) -> list[str]:
    """The source files the code of ``objects`` (callables, classes, modules) comes
    from, with the user's files those modules use, transitively: a module's globals
    that are modules, functions or classes of another module bring that module's file
    in, unless it belongs to the standard library, an installed library (a file under
    site-packages that is not of the same top-level package as one of ``objects``) or
    the harness (its source is in ``environment_key``). ``files`` are added as given
    (a ``--layers-from`` file). Sorted."""
    libraries = _library_roots()
    found: set[str] = {os.path.realpath(f) for f in files if os.path.isfile(f)}
    queue: list[types.ModuleType] = []
    own: set[str] = set()
    for obj in objects:
        if obj is None:
            continue
        target = getattr(obj, "__func__", obj)
        path = _source_file(target)
        if path:
            found.add(path)
        module = _module_of(target)
        if module is not None:
            top = module.__name__.partition(".")[0]
            # a library whose version is in the key already (a native that is
            # torch.fft.fft) is not walked: its files change only with its version
            if top not in _VERSIONED_TOPS:
                own.add(top)
            queue.append(module)
    with warnings.catch_warnings():
        # reading a module's globals may touch deprecated attributes
        # (torch.distributed.reduce_op warns): one line on stderr is all a run may print
        warnings.simplefilter("ignore")
        return _walk(queue, own, found, libraries)


def _walk(
    queue: list[types.ModuleType], own: set[str], found: set[str], libraries: tuple[str, ...]
) -> list[str]:
    seen: set[str] = set()
    while queue:
        module = queue.pop()
        if module.__name__ in seen:
            continue
        seen.add(module.__name__)
        path = _source_file(module)
        top = module.__name__.partition(".")[0]
        if top == "harness" or path is None:
            continue
        if top not in own and path.startswith(libraries):
            continue
        found.add(path)
        for value in list(vars(module).values()):
            other = _module_of(value)
            if other is not None and other.__name__ not in seen:
                queue.append(other)
    return sorted(found)


def code_hash(objects: Iterable[Any], files: Iterable[str] = ()) -> str:
    """A hash of the source of ``code_files(objects, files)``: one changed line in any
    of them changes it."""
    return files_hash(code_files(objects, files))[:24]


# ------------------------------------------------------------------------------ store


@dataclass(frozen=True)
class Lookup:
    """What a lookup found: ``value`` (None on a miss), and ``note`` when an entry was
    damaged and removed (the check is then recomputed)."""

    value: Any = None
    note: str | None = None
    path: Path | None = None

    @property
    def hit(self) -> bool:
        return self.value is not None

    @property
    def status(self) -> str:
        """``hit``, ``miss`` or ``damaged``, as events and run.json record it."""
        return "hit" if self.hit else "damaged" if self.note else "miss"


@dataclass
class CacheInfo:
    """What the cache holds: entries and bytes per top folder, and the oldest and
    newest modification times (seconds since the epoch) over all of them."""

    root: Path
    entries: dict[str, int] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)
    oldest: float | None = None
    newest: float | None = None

    @property
    def total_entries(self) -> int:
        return sum(self.entries.values())

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes.values())

    def lines(self) -> list[str]:
        """The report of ``python -m harness cache info``."""

        def when(t: float | None) -> str:
            return "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))

        out = [
            f"cache: {self.root}",
            f"entries: {self.total_entries} ({fmt_bytes(self.total_bytes)})",
        ]
        for name in _TOP_FOLDERS:
            out.append(
                f"  {name}: {self.entries.get(name, 0)} ({fmt_bytes(self.bytes.get(name, 0))})"
            )
        out += [f"oldest: {when(self.oldest)}", f"newest: {when(self.newest)}"]
        return out


def fmt_bytes(n: float) -> str:
    """``3_984_588`` -> ``3.8 MiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


def _tree_size(path: Path) -> tuple[int, float]:
    """Bytes under ``path`` (a file or folder) and its latest modification time."""
    if path.is_file():
        st = path.stat()
        return st.st_size, st.st_mtime
    size, latest = 0, path.stat().st_mtime
    for sub, _, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):
                st = os.stat(os.path.join(sub, name))
                size += st.st_size
                latest = max(latest, st.st_mtime)
    return size, latest


class Store:
    """The cache under ``root``: ``get`` / ``put`` of checks by key, ``items``,
    ``info``, ``clear`` and ``evict``."""

    def __init__(self, root: str | os.PathLike[str], limit_bytes: int | None = None) -> None:
        self.root = Path(root)
        if limit_bytes is None:
            limit_mb = os.environ.get(LIMIT_ENV)
            limit_bytes = int(float(limit_mb) * 1024**2) if limit_mb else DEFAULT_LIMIT_BYTES
        self.limit_bytes = limit_bytes

    def path(self, kind: str, key: Mapping[str, Any]) -> Path:
        digest = _digest({"kind": kind, **key})
        return self.root / "checks" / kind / digest[:2] / f"{digest}.json"

    def get(self, kind: str, key: Mapping[str, Any]) -> Lookup:
        """The value stored under ``key``, or a miss. A damaged entry (unreadable, a
        checksum or key that does not match) is removed: a miss with a note."""
        path = self.path(kind, key)
        try:
            raw = path.read_bytes()
        except OSError:
            return Lookup()
        why = ""
        try:
            entry = json.loads(raw)
            body = {"kind": entry["kind"], "key": entry["key"], "value": entry["value"]}
            if entry.get("checksum") != _digest(body):
                why = "its checksum does not match"
            elif entry["kind"] != kind or entry["key"] != json.loads(
                json.dumps(dict(key), sort_keys=True, default=str)
            ):
                why = "it holds another key"
        except (ValueError, KeyError, TypeError):
            why = "it is not a readable entry"
        if why:
            with contextlib.suppress(OSError):
                path.unlink()
            return Lookup(note=f"cache entry {path} was damaged ({why}); recomputed", path=path)
        with contextlib.suppress(OSError):
            os.utime(path)  # least recently used goes first in evict()
        return Lookup(entry["value"], path=path)

    def put(self, kind: str, key: Mapping[str, Any], value: Any) -> Path | None:
        """Store ``value`` (JSON) under ``key``, atomically; None when the cache cannot
        be written (an unwritable cache only costs recomputing next time)."""
        path = self.path(kind, key)
        key_json = json.loads(json.dumps(dict(key), sort_keys=True, default=str))
        body = {"kind": kind, "key": key_json, "value": value}
        entry = {
            "schema": _ENTRY_SCHEMA,
            **body,
            "checksum": _digest(body),
            "created": time.time(),
        }
        data = json.dumps(entry, sort_keys=True, default=str).encode()
        try:
            atomic_write_bytes(path, data)
        except OSError:
            return None
        return path

    def items(self) -> Iterator[tuple[str, Path]]:
        """Every unit of the cache, (top folder, path): an entry file of ``checks``, a
        model folder of ``onnx``, a folder of ``inductor``."""
        for name in _TOP_FOLDERS:
            top = self.root / name
            if not top.is_dir():
                continue
            if name == "checks":
                for path in sorted(top.glob("*/*/*.json")):
                    yield name, path
            else:
                for path in sorted(top.iterdir()):
                    if not path.name.startswith("."):
                        yield name, path

    def _sized(self) -> list[tuple[str, Path, int, float]]:
        out: list[tuple[str, Path, int, float]] = []
        try:
            found = list(self.items())
        except OSError:
            return out
        for name, path in found:
            with contextlib.suppress(OSError):
                size, mtime = _tree_size(path)
                out.append((name, path, size, mtime))
        return out

    def info(self) -> CacheInfo:
        info = CacheInfo(self.root)
        for name, _, size, mtime in self._sized():
            info.entries[name] = info.entries.get(name, 0) + 1
            info.bytes[name] = info.bytes.get(name, 0) + size
            info.oldest = mtime if info.oldest is None else min(info.oldest, mtime)
            info.newest = mtime if info.newest is None else max(info.newest, mtime)
        return info

    @staticmethod
    def _remove(path: Path) -> None:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                path.unlink()

    def clear(self) -> int:
        """Remove every item; returns how many. Other files under the root (a user's
        own) are left alone."""
        removed = 0
        for _, path in list(self.items()):
            self._remove(path)
            removed += 1
        for name in _TOP_FOLDERS:
            top = self.root / name
            for tmp in top.glob("**/.*.tmp") if top.is_dir() else ():
                with contextlib.suppress(OSError):
                    tmp.unlink()
        return removed

    def evict(self, keep: Sequence[Path] = ()) -> list[Path]:
        """Remove the least recently used items until the cache holds at most
        ``limit_bytes``; ``keep`` (the inductor folder in use) is never removed."""
        sized = sorted(self._sized(), key=lambda item: item[3])
        total = sum(size for _, _, size, _ in sized)
        kept = {Path(p).resolve() for p in keep}
        removed: list[Path] = []
        for _, path, size, _ in sized:
            if total <= self.limit_bytes:
                break
            if path.resolve() in kept:
                continue
            self._remove(path)
            removed.append(path)
            total -= size
        return removed


def _event_layer(event: Any) -> str:
    variant = getattr(event, "variant", None)
    if variant is not None:
        return str(getattr(variant, "layer", None) or str(variant).split("/")[0])
    return str(getattr(event, "layer", ""))


def cache_summary(root: Path | None, events: Iterable[Any]) -> dict[str, Any]:
    """run.json's ``cache`` record from a run's setup events (``CapabilitiesDone``,
    ``GradcheckDone``, ``SetupDone``; others are skipped): per check and layer, how
    many were served from the cache (``hits``) and computed (``misses``, the damaged
    entries recomputed among them, also counted in ``damaged``)."""
    hits: dict[str, dict[str, int]] = {}
    misses: dict[str, dict[str, int]] = {}
    damaged = 0
    for event in events:
        check = getattr(event, "kind", "")
        status = getattr(event, "cache", "")
        if check not in CHECKS or not status:
            continue
        into = hits if status == "hit" else misses
        by_layer = into.setdefault(check, {})
        layer = _event_layer(event)
        by_layer[layer] = by_layer.get(layer, 0) + 1
        damaged += status == "damaged"
    return {
        "enabled": root is not None,
        "dir": str(root) if root is not None else None,
        "hits": hits,
        "misses": misses,
        "damaged": damaged,
    }


def _layer_objects(layer: Any) -> list[Any]:
    """What a layer's declaration runs: its input factory, reference and constraint,
    and each declared implementation's function or module factory."""
    objects = [layer.make_inputs, layer.reference, layer.constraint, layer.arguments]
    for impl in layer.implementations:
        objects += [impl.fn, impl.module]
    return objects


class Checks:
    """A worker's side of the cache: the keys of its three cached checks, and their
    lookups and stores under ``root``. ``cpu_capability`` is torch's
    (``torch.backends.cpu.get_cpu_capability()``); ``layers_from`` the run's
    ``--layers-from`` (a file among them is hashed whole)."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        cpu_capability: str,
        seed: int,
        layers_from: Sequence[str] = (),
    ) -> None:
        self.store = Store(root)
        self.environment = environment_key(cpu_capability)
        self.seed = seed
        self.files = tuple(f for f in layers_from if os.path.isfile(f))
        self._code: dict[str, str] = {}

    def code(self, layer: Any) -> str:
        if layer.name not in self._code:
            self._code[layer.name] = code_hash(_layer_objects(layer), self.files)
        return self._code[layer.name]

    def key(self, check: str, layer: Any, **what: Any) -> dict[str, Any]:
        return {
            "check": check,
            "version": CHECKS[check],
            "environment": self.environment,
            "layer": layer.name,
            "code": self.code(layer),
            "seed": self.seed,
            **what,
        }

    def get(self, check: str, key: Mapping[str, Any]) -> Lookup:
        return self.store.get(check, key)

    def put(self, check: str, key: Mapping[str, Any], value: Any) -> None:
        self.store.put(check, key, value)
