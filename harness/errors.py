"""The harness's exceptions, one hierarchy.

::

    HarnessError                 base class; the CLI prints "error: <message>" and exits 2
    ├── ConfigError              bad user input: unknown layer or implementation,
    │                            malformed grid, unreadable config, unwritable output
    ├── LayerDefinitionError     an invalid layer declaration (names the layer and the problem)
    ├── InputError               a tensor that does not fit a layer (wrong rank, wrong dtype)
    ├── ResultsError             a folder that is not a results folder, a corrupt or
    │                            incompatible one
    └── FormUnsupported          a derived form (TorchScript, torch.compile whole, ONNX
                                 Runtime) cannot be built from an implementation; never
                                 reaches the user: its rows are ``unsupported``, with
                                 ``cause``, one line naming the defect

Messages are complete sentences built before raising, so that one line on stderr is
enough for the user to act on.

Exceptions the harness *records* rather than raises (a layer that fails, a check that
is unsupported) are described in one format, ``describe(exc)``: ``Type: first line``,
one complete line (``one_line``): a first line that ends by announcing what follows
(``... Next steps:``) loses that dangling sentence, and a long one is cut at a sentence
end, else at a clause, with ``…`` only where words are cut off mid-sentence.
"""

from __future__ import annotations

import re

__all__ = [
    "ConfigError",
    "FormUnsupported",
    "HarnessError",
    "InputError",
    "LayerDefinitionError",
    "ResultsError",
    "describe",
    "first_line",
    "inference_mode_only",
    "one_line",
    "root_cause",
    "truncate",
]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class HarnessError(Exception):
    """Base class of every error the harness raises on purpose."""


class ConfigError(HarnessError, ValueError):
    """The user asked for something the harness cannot do (bad grid, unknown name, ...)."""


class LayerDefinitionError(HarnessError, ValueError):
    """A layer declaration is incomplete or inconsistent."""


class InputError(HarnessError, ValueError):
    """A tensor given to a layer does not match its declared inputs."""


class ResultsError(HarnessError):
    """A results folder is missing, corrupt, or incompatible with the request."""


class FormUnsupported(HarnessError):
    """A derived form cannot be built from an implementation: TorchScript cannot script
    or save it, ``torch.compile(fullgraph=True)`` cannot take it whole, ONNX cannot
    export it (``harness.forms.build``). Not a failure of the layer: the worker records
    every phase of that form as ``unsupported`` with ``cause``, a complete line that
    names the defect (``no ONNX function for prims.bessel_i1e``)."""

    def __init__(self, cause: str) -> None:
        self.cause = one_line(cause, _CAUSE_CHARS)
        super().__init__(self.cause)


# -- describing an exception in one line ------------------------------------------------


def first_line(exc: BaseException) -> str:
    """The first non-blank line of ``str(exc)``, stripped of ANSI colour codes and
    surrounding whitespace (``""`` for an exception with no message)."""
    text = _ANSI.sub("", str(exc))
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


#: Where a sentence ends (a period, ``?`` or ``!`` followed by a space), and where a
#: clause ends (``;``, ``,``, a dash or an opening parenthesis after a space).
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")
#: Abbreviations whose period ends no sentence (Dynamo: "a Python builtin (e.g. ...)").
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "cf.")
#: A source frame a message announces (TorchScript's ``File "f.py", line 610``).
_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)')

_CLAUSE_END = re.compile(r"[;,:]\s+|\s+(?:\(|—|-\s)")
_CAUSE_CHARS = 240


def _sentence_ends(text: str) -> list[int]:
    """Where the sentences of ``text`` end (the whitespace after each one's period),
    not counting the period of an abbreviation."""
    return [
        m.start()
        for m in _SENTENCE_END.finditer(text)
        if not text[: m.start()].lower().endswith(_ABBREVIATIONS)
    ]


def _where(frame: re.Match[str], source: list[str]) -> str:
    """``function.py:610: def apply(cls, *args, **kwargs):`` for a frame whose source
    lines follow it, marked ``<--- HERE`` under the culprit (TorchScript's style)."""
    where = f"{frame.group('file').rsplit('/', 1)[-1]}:{frame.group('line')}"
    for i, text in enumerate(source):
        if "<--- HERE" in text and i > 0:
            return f"{where}: {source[i - 1]}"
    return where


def _drop_dangling(text: str) -> str:
    """``text`` without a last sentence that only announces what the next lines said
    (``... This is step 3/3 of exporting the model to ONNX. Next steps:``)."""
    if not text.endswith(":"):
        return text
    ends = _sentence_ends(text)
    if not ends:
        return text
    return text[: ends[-1]].rstrip()


def one_line(text: str, limit: int | None = 500) -> str:
    """``text`` as one complete line of at most ``limit`` characters (``None``: no limit).

    Only the first non-blank line is kept (ANSI codes removed), without a last sentence
    that ends in ``:`` announcing lines that are dropped; a first line that is nothing
    but such an announcement (TorchScript's ``Function.apply(Tensor cls, ...) -> Tensor
    0:``) is completed by the line it announces. A longer line is cut after the last
    whole sentence that fits (no ellipsis: what is left reads complete); failing that,
    at the last clause boundary, else the last word, ending in ``…``."""
    lines = [part.strip() for part in _ANSI.sub("", text).splitlines() if part.strip()]
    line = lines[0].rstrip(",") if lines else ""  # gradcheck's "... input 0,"
    if line.endswith(":"):
        kept = _drop_dangling(line)
        if kept == line and len(lines) > 1:
            if not lines[1].startswith(("File ", ":", "-")):
                kept = f"{line} {lines[1]}"
            elif frame := _FRAME.match(lines[1]):
                kept = f"{line[:-1]} at {_where(frame, lines[2:])}"
        line = kept
    if limit is None or len(line) <= limit:
        return line
    # a cut inside parentheses closes them (TorchScript's "(This attribute exists on
    # the Python module, ... to a TorchScript type." read as if cut off, 2026-12-02)
    sentences = [end for end in _sentence_ends(line) if end + _open(line[:end]) <= limit]
    if sentences and sentences[-1] >= limit // 3:
        return _closed(line[: sentences[-1]].rstrip())
    room = line[: max(limit - 1 - _open(line[:limit]), 0)]
    clauses = [m.start() for m in _CLAUSE_END.finditer(room)]
    if clauses and clauses[-1] >= limit // 3:
        return _closed(room[: clauses[-1]].rstrip(" ,;:—-(") + "…")
    space = room.rfind(" ")
    if space >= limit // 3:
        return _closed(room[:space].rstrip(" ,;:—-(") + "…")
    return truncate(line, limit)


def _open(text: str) -> int:
    """How many parentheses ``text`` leaves open."""
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
    return depth


def _closed(text: str) -> str:
    return text + ")" * _open(text)


def truncate(text: str, limit: int | None) -> str:
    """``text`` cut to at most ``limit`` characters, ending in ``…`` when cut."""
    if limit is None or len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)].rstrip() + "…"


def describe(exc: BaseException, limit: int | None = 500) -> str:
    """``Type: first line`` of an exception (just ``Type`` when it has no message), as
    one complete line of at most ``limit`` characters (``one_line``; ``None``: no
    limit)."""
    name = type(exc).__name__
    if not first_line(exc):
        return truncate(name, limit)
    room = None if limit is None else max(limit - len(name) - 2, 1)
    return f"{name}: {one_line(str(exc), room)}"


def root_cause(exc: BaseException) -> BaseException:
    """The innermost ``__cause__`` of ``exc`` that has a message (``exc`` itself if
    none): wrappers such as ``TorchExportError`` say little in their first line."""
    root, seen = exc, {id(exc)}
    while root.__cause__ is not None and id(root.__cause__) not in seen:
        if not first_line(root.__cause__):
            break
        root = root.__cause__
        seen.add(id(root))
    return root


def inference_mode_only(exc: BaseException) -> RuntimeError:
    """The error of a native call that fails under ``torch.inference_mode()``, the mode
    it is served in, and runs under ``torch.no_grad()``: the mode named as the trigger
    (2026-12-02: a compiled native with ``torch.from_numpy`` inside failed a Dynamo guard
    under inference_mode alone, beside a capability matrix that said compile ✓; an
    in-place update of an inference tensor fails the same way)."""
    return RuntimeError(
        "fails under torch.inference_mode(), the mode it is served in, and runs under "
        f"torch.no_grad() (serve it there): {describe(exc)}"
    )
