"""``python -m harness``: a thin command line over the library.

Commands: ``run``, ``report``, ``compare``, ``capabilities``, ``layers``. Every error
the harness raises on purpose (``HarnessError``) and every usage error is one line
``error: ...`` on stderr and exit code 2; an interrupted run exits 130.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from harness.errors import ConfigError, HarnessError

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{message} (see {self.prog} --help)")


def _add_selection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--layers", help="comma-separated layer names (default: all registered)")
    p.add_argument(
        "--layers-from",
        action="append",
        default=[],
        metavar="MODULE_OR_FILE",
        help="also load layers from a module path or a .py file (repeatable)",
    )


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m harness", description=__doc__.splitlines()[0] if __doc__ else None
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="measure a grid and write a results folder and its report")
    _add_selection(run)
    run.add_argument("--impls", help="comma-separated implementations (default: all of each layer)")
    run.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="AXIS=VALUES",
        help="values of one grid axis: n=8,16,32 or n=8..1024*2 or n=8..64+8 (repeatable)",
    )
    run.add_argument("--dtype", help="comma-separated dtypes (default: float32)")
    run.add_argument("--threads", help="comma-separated thread counts (default: 1)")
    run.add_argument("--device", help="cpu, cuda, or both comma-separated (default: cpu)")
    run.add_argument("--config", metavar="FILE.toml", help="read these settings from a TOML file")
    run.add_argument(
        "--profile",
        choices=["quick", "default", "rigorous"],
        help="how much measuring each point gets",
    )
    run.add_argument(
        "--out", help="results folder to create (default: a new folder under reports/)"
    )
    run.add_argument(
        "--resume",
        metavar="DIR",
        help="continue an interrupted run in DIR, measuring only what is missing",
    )
    run.add_argument(
        "--seed", type=int, help="seed of the inputs and of the case order (default: 0)"
    )
    run.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="time limit of one case in one worker (default: the profile's)",
    )
    run.add_argument(
        "--no-capabilities",
        action="store_true",
        help="skip the capability matrix (TorchScript, compile, ONNX checks)",
    )
    run.add_argument("--no-report", action="store_true", help="do not write report.md at the end")
    run.add_argument("--quiet", "-q", action="store_true", help="no progress output")

    rep = sub.add_parser("report", help="write DIR/report.md and its plots from a results folder")
    rep.add_argument("args", nargs=argparse.REMAINDER)
    cmp_ = sub.add_parser("compare", help="compare two results folders")
    cmp_.add_argument("args", nargs=argparse.REMAINDER)

    cap = sub.add_parser(
        "capabilities", help="print the capability matrix (TorchScript, compile, ONNX)"
    )
    _add_selection(cap)
    cap.add_argument("--impls", help="comma-separated declared implementations (default: all)")
    cap.add_argument("--format", choices=["markdown", "csv"], default="markdown")

    lay = sub.add_parser("layers", help="list the registered layers and where they come from")
    _add_selection(lay)
    return parser


def cmd_run(args: argparse.Namespace) -> int:
    from harness.config import RunConfig, load_config, parse_grid, parse_list
    from harness.runner import Runner

    settings: dict[str, Any] = load_config(args.config) if args.config else {}
    out = settings.pop("out", None)
    if args.layers:
        settings["layers"] = parse_list(args.layers, "--layers")
    if args.impls:
        settings["impls"] = parse_list(args.impls, "--impls")
    if args.grid:
        settings["grid"] = {**settings.get("grid", {}), **parse_grid(args.grid)}
    if args.dtype:
        settings["dtypes"] = parse_list(args.dtype, "--dtype")
    if args.threads:
        try:
            settings["threads"] = tuple(int(t) for t in parse_list(args.threads, "--threads"))
        except ValueError:
            raise ConfigError(
                f"--threads {args.threads!r}: expected integers such as 1,2"
            ) from None
    if args.device:
        settings["devices"] = parse_list(args.device, "--device")
    if args.profile:
        settings["profile"] = args.profile
    if args.layers_from:
        settings["layers_from"] = (*settings.get("layers_from", ()), *args.layers_from)
    if args.seed is not None:
        settings["seed"] = args.seed
    if args.timeout is not None:
        settings["timeout_s"] = args.timeout
    if args.no_capabilities:
        settings["capabilities"] = False
    config = RunConfig(**settings)
    if args.resume and args.out:
        raise ConfigError("--out and --resume are exclusive: --resume continues its own folder")
    runner = Runner(
        config, out=args.out or out, resume=args.resume, quiet=args.quiet, report=not args.no_report
    )
    outcome = runner.run()
    if outcome.interrupted:
        return 130
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report.commands import cmd_report as report

    return report(args.args)


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.report.commands import cmd_compare as compare

    return compare(args.args)


def cmd_capabilities(args: argparse.Namespace) -> int:
    from harness.capabilities import capability_frame, format_capabilities
    from harness.config import parse_list
    from harness.forms import quiet
    from harness.registry import Registry

    with quiet():
        registry = Registry.default(args.layers_from)
    names = parse_list(args.layers, "--layers") if args.layers else registry.names()
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
    from harness.config import parse_list
    from harness.forms import quiet
    from harness.registry import Registry

    with quiet():
        registry = Registry.default(args.layers_from)
    names = parse_list(args.layers, "--layers") if args.layers else registry.names()
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
            back = "" if impl.backward else ", forward only"
            lines.append(f"  impl {impl.name}: {kind}{back}")
    print("\n".join(lines))
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run,
    "report": cmd_report,
    "compare": cmd_compare,
    "capabilities": cmd_capabilities,
    "layers": cmd_layers,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m harness``; returns the exit code."""
    parser = _build_parser()
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
