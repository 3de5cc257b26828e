"""``python -m harness``: a thin command line over the library.

Commands: ``run``, ``report``, ``compare``, ``merge``, ``capabilities``, ``layers``, ``scan``,
``cache``, all in one argparse tree. ``run``'s options come from ``RunConfig``'s declaration
(``harness.config``). Every error the harness raises on purpose (``HarnessError``)
and every usage error is one line ``error: ...`` on stderr and exit code 2; an
interrupted run exits 130; ``compare --fail-above`` exits 1 on a slowdown.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeAlias

from harness.config import (
    add_run_option,
    add_run_options,
    merge_settings,
    parse_list,
    settings_from_namespace,
)
from harness.errors import ConfigError, HarnessError

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{message} (see {self.prog} --help)")


def _percent(text: str) -> float:
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a percentage: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a percentage must be >= 0, not {text!r}")
    return value


def _add_selection(p: argparse.ArgumentParser) -> None:
    """``--layers`` and ``--layers-from``, as ``run`` declares them (``RunConfig``)."""
    add_run_option(p, "layers")
    add_run_option(p, "layers_from")


def _selection(args: argparse.Namespace) -> tuple[Any, list[str]]:
    """The registry with ``--layers-from``, and the layer names ``--layers`` picks."""
    chosen = settings_from_namespace(args)
    registry = _registry(chosen.get("layers_from", ()))
    return registry, list(chosen.get("layers") or registry.names())


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: one subparser per command, declared by its ``_add_*``."""
    parser = _Parser(
        prog="python -m harness", description=__doc__.splitlines()[0] if __doc__ else None
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (
        _add_run,
        _add_report,
        _add_compare,
        _add_merge,
        _add_capabilities,
        _add_layers,
        _add_scan,
        _add_cache,
    ):
        add(sub)
    return parser


#: What ``add_subparsers`` returns; its ``add_parser`` makes a ``_Parser``.
_Commands: TypeAlias = "argparse._SubParsersAction[_Parser]"


def _add_run(sub: _Commands) -> None:
    run = sub.add_parser("run", help="measure a grid and write a results folder and its report")
    add_run_options(run)
    run.add_argument("--config", metavar="FILE.toml", help="read settings from a TOML file")
    run.add_argument("--out", help="results folder to create (default: a new one under reports/)")
    run.add_argument(
        "--resume", metavar="DIR", help="continue an interrupted run in DIR (only what is missing)"
    )
    run.add_argument("--no-report", action="store_true", help="do not write report.md at the end")
    run.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    run.add_argument("--scan", metavar="DIR", help="weigh verdicts by the shares of a scan folder")


def _add_report(sub: _Commands) -> None:
    rep = sub.add_parser("report", help="write DIR/report.md and its plots from a results folder")
    rep.add_argument("dir", metavar="DIR", help="results folder")
    rep.add_argument("--scan", metavar="DIR", help="weigh verdicts by the shares of a scan folder")


def _add_compare(sub: _Commands) -> None:
    cmp_ = sub.add_parser(
        "compare",
        help="compare two results folders point by point",
        description="Compare two results folders point by point (new / base), slowdowns "
        "first. Exit status 1 when --fail-above is given and a significant slowdown "
        "exceeds it, or a point that ran in BASE fails in NEW.",
    )
    cmp_.add_argument("base", metavar="BASE_DIR", help="results folder of the reference run")
    cmp_.add_argument("new", metavar="NEW_DIR", help="results folder of the run to judge")
    cmp_.add_argument("--out", metavar="FILE", help="write the Markdown here instead of stdout")
    cmp_.add_argument(
        "--threshold",
        metavar="PCT",
        type=_percent,
        default=5.0,
        help="smallest change reported as slower or faster (default 5)",
    )
    cmp_.add_argument(
        "--fail-above",
        metavar="PCT",
        type=_percent,
        default=None,
        help="exit 1 when a statistically significant slowdown exceeds PCT percent",
    )
    cmp_.add_argument(
        "--no-correction",
        action="store_true",
        help="do not adjust p-values for the number of points compared (Benjamini-Hochberg)",
    )


def _add_merge(sub: _Commands) -> None:
    mrg = sub.add_parser(
        "merge", help="merge the results folders of the parts of a --shard run into one"
    )
    mrg.add_argument("out", metavar="OUT", help="results folder to create")
    mrg.add_argument("parts", metavar="DIR", nargs="+", help="results folders of the parts")
    mrg.add_argument(
        "--allow-mixed",
        action="store_true",
        help="merge parts measured on different machines (the report says so)",
    )


def _add_capabilities(sub: _Commands) -> None:
    cap = sub.add_parser(
        "capabilities", help="print the capability matrix (TorchScript, compile, ONNX)"
    )
    _add_selection(cap)
    cap.add_argument("--impls", help="comma-separated declared implementations (default: all)")
    cap.add_argument("--format", choices=["markdown", "csv"], default="markdown")


def _add_layers(sub: _Commands) -> None:
    lay = sub.add_parser("layers", help="list the registered layers and where they come from")
    _add_selection(lay)


def _add_scan(sub: _Commands) -> None:
    scn = sub.add_parser(
        "scan",
        help="run a training script under the profiler: its custom autograd Functions, "
        "their shapes and share of the time, and a layer file for them",
    )
    scn.add_argument("--out", help="folder to write (default: a new one under reports/)")
    scn.add_argument(
        "--steps", type=int, metavar="N", help="profile N iterations (optimizer steps) then stop"
    )
    scn.add_argument("script", metavar="SCRIPT", help="the Python script to run as __main__")
    scn.add_argument("script_args", metavar="ARGS", nargs=argparse.REMAINDER, help="its arguments")


def _add_cache(sub: _Commands) -> None:
    cch = sub.add_parser(
        "cache",
        help="what the cache of checks across runs holds (info), or empty it (clear)",
    )
    cch.add_argument("action", choices=["info", "clear"])
    add_run_option(cch, "cache_dir")


def cmd_run(args: argparse.Namespace) -> int:
    from harness.runner import Runner

    settings, out = merge_settings(
        args.config or None,
        settings_from_namespace(args),
        out=args.out or None,
        resume=args.resume or None,
    )
    if args.resume and args.out:
        raise ConfigError("--out and --resume are exclusive: --resume continues its own folder")
    if args.scan:
        from harness.report.scan_share import check_scan

        check_scan(args.scan)  # before anything is measured
    runner = Runner.from_settings(
        settings,
        out=out,
        resume=args.resume,
        quiet=args.quiet,
        report=not args.no_report and not args.scan,
    )
    outcome = runner.run()
    if args.scan and not args.no_report and not outcome.interrupted:
        _report_with_scan(outcome.path, args.scan)
    return 130 if outcome.interrupted else 0


def _report_with_scan(folder: Any, scan: str) -> Any:
    """Keep the scan's shares beside the results (``scan.json``), then write the report."""
    from harness.report import write_report
    from harness.report.scan_share import attach_scan

    attach_scan(folder, scan)
    return write_report(folder, notes=_note)


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report import write_report

    if args.scan:
        path = _report_with_scan(args.dir, args.scan)
        print(path)
        return 0
    path = write_report(args.dir, notes=_note)
    print(path)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.report import compare_runs, format_comparison
    from harness.results import atomic_write_text

    cmp = compare_runs(
        args.base, args.new, threshold_pct=args.threshold, correct=not args.no_correction
    )
    for note in cmp.notes:  # a rebuilt file or an incomplete run is said, not hidden
        _note(note)
    text = format_comparison(cmp)
    if args.out:
        try:
            atomic_write_text(args.out, text)
        except OSError as exc:
            raise ConfigError(f"{args.out}: cannot write: {exc}".splitlines()[0]) from None
    else:
        sys.stdout.write(text)
    if args.fail_above is not None:
        worst = cmp.worst_significant_slowdown_pct
        if worst > args.fail_above:
            print(
                f"compare: significant slowdown of {worst:.1f}% exceeds --fail-above "
                f"{args.fail_above:g}%",
                file=sys.stderr,
            )
            return 1
        if cmp.newly_failing:
            print(
                f"compare: {len(cmp.newly_failing)} point(s) that ran in the base run "
                "fail in the new one",
                file=sys.stderr,
            )
            return 1
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from harness.merge import merge

    path = merge(args.out, args.parts, allow_mixed=args.allow_mixed)
    print(path)
    return 0


def _registry(layers_from: Sequence[str]) -> Any:
    from harness.forms import quiet
    from harness.registry import Registry

    with quiet():
        return Registry.default(layers_from)


def cmd_capabilities(args: argparse.Namespace) -> int:
    from harness.capabilities import capability_frame, format_capabilities

    registry, names = _selection(args)
    layers = [registry.get(n) for n in names]
    impls = parse_list(args.impls, "--impls") if args.impls else None
    if impls is not None:
        known = {i.name for layer in layers for i in layer.implementations}
        unknown = [i for i in impls if i not in known]
        if unknown:
            raise ConfigError(
                f"unknown implementation {unknown[0]!r} (declared: {', '.join(sorted(known))})"
            )
    frame = capability_frame(layers, impls=impls)
    if args.format == "csv":
        sys.stdout.write(frame.to_csv(index=False))
    else:
        sys.stdout.write(format_capabilities(frame) + "\n")
    return 0


def cmd_layers(args: argparse.Namespace) -> int:
    registry, names = _selection(args)
    lines = []
    for name in names:
        layer = registry.get(name)
        lines.append(f"{layer.name}  ({registry.origin(name)})")
        lines.append(f"  {layer.description}")
        for axis in layer.axes:
            values = ",".join(str(v) for v in axis.default)
            lines.append(
                f"  axis {axis.name}: {values}"
                + (f"  ({axis.description})" if axis.description else "")
            )
        for impl in layer.all_implementations():
            kind = impl.role if impl.form == "eager" else f"{impl.form} form of {impl.source}"
            back = "" if impl.backward and layer.trains else ", forward only"
            if impl.form == "torchscript" and impl.module is not None:
                back += ", not built (declared with module=: declare it with fn= to time one)"
            lines.append(f"  impl {impl.name}: {kind}{back}")
    print("\n".join(lines))
    return 0


def _scan(args: argparse.Namespace) -> int:
    from harness.scan import cmd_scan

    return cmd_scan(args.script, args.script_args, out=args.out, steps=args.steps)


def cmd_cache(args: argparse.Namespace) -> int:
    from harness.cache import Store, cache_root, fmt_bytes

    store = Store(cache_root(settings_from_namespace(args).get("cache_dir")))
    if args.action == "clear":
        before = store.info()
        removed = store.clear()
        print(f"removed {removed} entries ({fmt_bytes(before.total_bytes)}) from {store.root}")
        return 0
    print("\n".join(store.info().lines()))
    return 0


def _note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run,
    "report": cmd_report,
    "compare": cmd_compare,
    "merge": cmd_merge,
    "capabilities": cmd_capabilities,
    "layers": cmd_layers,
    "scan": _scan,
    "cache": cmd_cache,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m harness``; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
        return COMMANDS[args.command](args)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
