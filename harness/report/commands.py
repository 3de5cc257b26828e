"""The ``report`` and ``compare`` subcommands, as functions of their argument lists.

Exit codes: 0 done; 1 ``--fail-above`` exceeded; 2 bad input (one ``error:`` line on
stderr) or bad usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from harness.errors import ConfigError, HarnessError
from harness.report import compare_runs, format_comparison, write_report
from harness.results import atomic_write_text

__all__ = ["cmd_compare", "cmd_report"]


def _parse(parser: argparse.ArgumentParser, args: Sequence[str]) -> argparse.Namespace | int:
    try:
        return parser.parse_args(list(args))
    except SystemExit as exc:  # argparse has printed usage or help
        return exc.code if isinstance(exc.code, int) else 2


def _percent(text: str) -> float:
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a percentage: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a percentage must be >= 0, not {text!r}")
    return value


def _guard(body: Callable[[], int]) -> int:
    try:
        return body()
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def cmd_report(args: Sequence[str]) -> int:
    """``report DIR``: write ``DIR/report.md`` and its plots; print the report's path."""
    parser = argparse.ArgumentParser(
        prog="python -m harness report",
        description="Write DIR/report.md and DIR/plots/*.png for a results folder.",
    )
    parser.add_argument("dir", metavar="DIR", help="results folder")
    ns = _parse(parser, args)
    if isinstance(ns, int):
        return ns

    def body() -> int:
        print(write_report(ns.dir))
        return 0

    return _guard(body)


def cmd_compare(args: Sequence[str]) -> int:
    """``compare BASE_DIR NEW_DIR [--out FILE] [--threshold PCT] [--fail-above PCT]``."""
    parser = argparse.ArgumentParser(
        prog="python -m harness compare",
        description=(
            "Compare two results folders point by point (new / base), slowdowns first. "
            "Exit status 1 when --fail-above is given and a significant slowdown exceeds "
            "it, or a point that ran in BASE fails in NEW."
        ),
    )
    parser.add_argument("base", metavar="BASE_DIR", help="results folder of the reference run")
    parser.add_argument("new", metavar="NEW_DIR", help="results folder of the run to judge")
    parser.add_argument("--out", metavar="FILE", help="write the Markdown here instead of stdout")
    parser.add_argument(
        "--threshold",
        metavar="PCT",
        type=_percent,
        default=5.0,
        help="smallest change reported as slower or faster (default 5)",
    )
    parser.add_argument(
        "--fail-above",
        metavar="PCT",
        type=_percent,
        default=None,
        help="exit 1 when a statistically significant slowdown exceeds PCT percent",
    )
    parser.add_argument(
        "--no-correction",
        action="store_true",
        help="do not adjust p-values for the number of points compared (Benjamini-Hochberg)",
    )
    ns = _parse(parser, args)
    if isinstance(ns, int):
        return ns

    def body() -> int:
        cmp = compare_runs(
            ns.base, ns.new, threshold_pct=ns.threshold, correct=not ns.no_correction
        )
        text = format_comparison(cmp)
        if ns.out:
            try:
                atomic_write_text(ns.out, text)
            except OSError as exc:
                raise ConfigError(f"{ns.out}: cannot write: {exc}".splitlines()[0]) from None
        else:
            sys.stdout.write(text)
        if ns.fail_above is not None:
            worst = cmp.worst_significant_slowdown_pct
            if worst > ns.fail_above:
                print(
                    f"compare: significant slowdown of {worst:.1f}% exceeds --fail-above "
                    f"{ns.fail_above:g}%",
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

    return _guard(body)
