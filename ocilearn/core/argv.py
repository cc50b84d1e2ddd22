"""Command lines parsed without click, for the commands whose time is measured against a
reference tool (``ocilearn copy`` against skopeo, ``ocilearn unpack`` against umoci).

Importing click costs ≈ 20 ms — a tenth of a pull from a loopback registry, 3 % of an
unpack (BENCHMARKS.md) — so the `ocilearn` command (:mod:`ocilearn.entry`) first tries
such a command's line here: when it is well formed (every option known, every value
valid, the right number of arguments) the command runs at once, with the same behaviour,
output and exit status as through click. Anything else (``--help``, an unknown option, a
bad value, a missing argument) is handed to click, which prints its own message. The
option tables are checked against the click commands' by the tests.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

__all__ = ["command_words", "parse_line", "run_command", "bars_wanted", "terminal_safe"]


def command_words(argv: list[str], name: str) -> tuple[bool, list[str]] | None:
    """For ``ocilearn [--debug] NAME WORDS…`` (``argv``: the words after the program name),
    ``(debug, WORDS)``; ``None`` for another command or another global option."""
    i = 0
    while i < len(argv) and argv[i] == "--debug":
        i += 1
    if argv[i:i + 1] != [name]:
        return None
    return i > 0, argv[i + 1:]


def _value(kind: Any, text: str, check: Callable[[str], Any] | None) -> Any:
    """``text`` converted for an option of ``kind`` (as click's types convert it), or
    ValueError. Kinds: ``"str"``, ``"pos-float"`` (> 0), ``"pos-int"`` (≥ 1), a tuple of
    choices; ``check`` (a string option's own test) may raise ValueError too."""
    if kind == "str":
        if check is not None:
            check(text)
        return text
    if kind == "pos-float":
        v = float(text)
        if not v > 0:
            raise ValueError(text)
        return v
    if kind == "pos-int":
        n = int(text)
        if n < 1:
            raise ValueError(text)
        return n
    if text not in kind:
        raise ValueError(text)
    return text


def parse_line(args: list[str], options: dict[str, tuple[str, Any]], short: dict[str, str], defaults: dict[str, Any],
               nargs: int, checks: dict[str, Callable[[str], Any]] | None = None) -> tuple[list[str], dict[str, Any]] | None:
    """Parse the words after a command's name the way click parses them: options and
    arguments in any order, ``--opt=value`` or ``--opt value`` (a value may start with
    ``-``), short flags grouped as ``-qa``, a short option's value attached as ``-j4``,
    ``--`` ending the options, the last of a repeated option winning.

    Args:
        options: ``{"--long": (keyword, kind)}``; kind ``"flag"`` or as :func:`_value`.
        short: ``{"-q": "--quiet"}``.
        defaults: every keyword's value when its option is not given.
        nargs: the number of arguments the command takes.
        checks: ``{keyword: f}`` for string options whose value click's command refuses
            (``f`` raises ValueError for those).

    Returns:
        (arguments, ``{keyword: value}``), or ``None`` when the line is not well formed or
        asks for help: then click must parse it.
    """
    opts = dict(defaults)
    pos: list[str] = []
    checks = checks or {}
    i = 0
    try:
        while i < len(args):
            a = args[i]
            i += 1
            if a == "--":
                pos += args[i:]
                break
            if a.startswith("--"):
                name, eq, attached = a.partition("=")
                if name not in options:
                    return None
                key, kind = options[name]
                if kind == "flag":
                    if eq:
                        return None
                    opts[key] = True
                    continue
                if not eq:
                    if i >= len(args):
                        return None
                    attached, i = args[i], i + 1
                opts[key] = _value(kind, attached, checks.get(key))
            elif a.startswith("-") and len(a) > 1:
                j = 1
                while j < len(a):
                    name = short.get("-" + a[j])
                    if name is None:
                        return None
                    key, kind = options[name]
                    j += 1
                    if kind == "flag":
                        opts[key] = True
                        continue
                    if j < len(a):
                        text = a[j:]
                    elif i < len(args):
                        text, i = args[i], i + 1
                    else:
                        return None
                    opts[key] = _value(kind, text, checks.get(key))
                    break
            else:
                pos.append(a)
    except ValueError:
        return None
    if len(pos) != nargs:
        return None
    return pos, opts


def run_command(body: Callable[[], None], debug: bool) -> int:
    """Run a command's ``body`` and give its exit status as :func:`ocilearn.cli.run`
    does: 0; 1 for a library error or an OSError, printed as one ``ocilearn: error: …``
    line; 70 (EX_SOFTWARE, sysexits.h) for a bug, one line too; 130 when interrupted.
    With ``debug`` the exception propagates (its traceback is shown)."""
    from .errors import OcilearnError

    try:
        body()
    except KeyboardInterrupt:
        print(file=sys.stderr)
        print("ocilearn: aborted", file=sys.stderr, flush=True)
        return 130
    except (OcilearnError, OSError) as e:
        if debug:
            raise
        msg = str(e).splitlines() or [type(e).__name__]
        print(f"ocilearn: error: {' '.join(m.strip() for m in msg)}", file=sys.stderr, flush=True)
        return 1
    except Exception as e:  # a bug of ours: still one line, the traceback on request
        if debug:
            raise
        print(f"ocilearn: internal error: {type(e).__name__}: {' '.join(str(e).split())[:300]} "
              "(a bug: please report it; --debug shows the traceback)", file=sys.stderr, flush=True)
        return 70  # EX_SOFTWARE
    return 0


def bars_wanted(quiet: bool) -> bool:
    """Whether a command line shows tqdm progress bars: not with ``--quiet``, and only when
    stderr is a terminal (isatty(3)), as skopeo draws its bars; in a pipe or a log file the
    bars' carriage returns and escape codes would be noise, and the one-line summary
    printed after the work says what was done."""
    return not quiet and sys.stderr is not None and sys.stderr.isatty()


def terminal_safe(line: str) -> str:
    """``line`` with each character that is not printable — C0 and C1 controls, DEL,
    the ``surrogateescape`` stand-ins of undecodable bytes — written as an octal escape
    (``\\033``), as GNU tar writes such bytes in names (``--quoting-style=escape``): a
    path taken from a layer cannot move a terminal's cursor, recolour it or forge a line
    of a log. Printable text, backslashes included, is left as it is."""
    if line.isprintable():
        return line
    out = []
    for ch in line:
        if ch.isprintable():
            out.append(ch)
            continue
        o = ord(ch)
        if 0xDC80 <= o <= 0xDCFF:  # an undecodable byte kept by surrogateescape: that byte
            out.append(f"\\{o - 0xDC00:03o}")
        elif 0xD800 <= o <= 0xDFFF:  # another lone surrogate: no bytes to write
            out.append(f"\\u{o:04x}")
        else:  # its UTF-8 bytes
            out.append("".join(f"\\{b:03o}" for b in ch.encode("utf-8")))
    return "".join(out)
