"""JSON on the runtime's start-up path (config.json, the runtime-spec schema files,
state.json, the setup messages): :func:`loads` and :func:`dumps` give what
``json.loads`` and ``json.dumps`` give (RFC 8259; the same C accelerator, ``_json``, that
the standard :mod:`json` module uses), without importing :mod:`json`.

Why: importing ``json`` compiles regular expressions for its pure-Python fallbacks
(json.scanner, json.decoder, json.encoder), and so imports :mod:`re` and with it
:mod:`enum`, :mod:`functools` and :mod:`collections` — about 7 ms of every ``ocilearn
run`` on an interpreter built without PGO, a quarter of the time ``runc run`` takes.
Anything unusual — invalid JSON, bytes, no ``_json`` (another Python implementation), an
indent — is handed to :mod:`json` itself, so errors are its ``JSONDecodeError`` with its
messages and positions.
"""

from __future__ import annotations

try:
    import _json
except ImportError:  # pragma: no cover - CPython always has it
    _json = None

#: JSON's whitespace (RFC 8259 section 2), what json.decoder's WHITESPACE matches
_WS = " \t\n\r"


class _DecoderSettings:
    """The attributes ``_json.make_scanner`` reads from a ``json.JSONDecoder``: its
    defaults (strict strings; NaN and Infinity accepted, as ``json.loads`` does)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}.__getitem__


_scan = _json.make_scanner(_DecoderSettings()) if _json is not None else None


def loads(s):
    """``json.loads(s)``: the Python value of the JSON document ``s``. Raises
    json.JSONDecodeError (a ValueError) for anything that is not one JSON value."""
    if _scan is not None and isinstance(s, str):
        start = len(s) - len(s.lstrip(_WS))
        try:
            value, end = _scan(s, start)
        except Exception:  # noqa: BLE001 - json below raises the right error
            # (the C scanner reports an error as json.decoder.JSONDecodeError, looked up in
            # sys.modules without importing it: before json is imported, a broken document
            # makes it raise SystemError; RecursionError for deep nesting is json's too)
            end = -1
        if end >= 0 and not s[end:].strip(_WS):
            return value
    import json  # the error (or the unusual input) is json's to describe

    return json.loads(s)


def _not_serializable(o):
    raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")


def dumps(obj) -> str:
    """``json.dumps(obj)`` with its defaults (ASCII output, ``", "`` and ``": "``
    separators, circular references refused). Raises TypeError or ValueError as it
    does."""
    if _json is None:  # pragma: no cover
        import json

        return json.dumps(obj)
    encode = _json.make_encoder({}, _not_serializable, _json.encode_basestring_ascii, None, ": ", ", ", False, False, True)
    return "".join(encode(obj, 0))
