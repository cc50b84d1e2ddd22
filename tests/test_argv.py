"""ocilearn.core.argv: command lines parsed without click (the parse itself is compared
with click's in test_cli_copy.py and test_bundle_cli.py), and lines made safe for a terminal."""

from __future__ import annotations

import pytest

from ocilearn.core.argv import command_words, terminal_safe


@pytest.mark.parametrize("line, safe", [
    ("plain é ü \\ 'quoted'", "plain é ü \\ 'quoted'"),
    ("a\x1b[31mred\x1b[0m", "a\\033[31mred\\033[0m"),
    ("tab\there\nnew\rline\x7f", "tab\\011here\\012new\\015line\\177"),
    ("c1 \x9b csi", "c1 \\302\\233 csi"),
    ("raw byte \udcff kept", "raw byte \\377 kept"),
    ("lone \ud800", "lone \\ud800"),
])
def test_terminal_safe_escapes_what_is_not_printable(line, safe):
    assert terminal_safe(line) == safe


def test_command_words():
    assert command_words(["unpack", "-q", "b"], "unpack") == (False, ["-q", "b"])
    assert command_words(["--debug", "--debug", "unpack"], "unpack") == (True, [])
    assert command_words(["--explain", "unpack", "b"], "unpack") is None
    assert command_words(["copy", "unpack"], "unpack") is None
    assert command_words([], "unpack") is None
