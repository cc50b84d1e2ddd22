"""ocilearn.views.fold: long output folded behind a <details> click in Jupyter, whole as
plain text elsewhere; --explain output summarised by its stages; shell lines without
'"'"' splicing; tables that fit the output area."""

from __future__ import annotations

import subprocess

from ocilearn.core import explain
from ocilearn.views.fold import Table, explain_summary, fold, shell_line, source

EXPLAIN = """  1. [runtime] create: container web from /b
       $ runc create --bundle /b web
  2. [runtime] cgroup limit: devices.deny = a
       $ echo a > devices.deny
  3. [runtime] cgroup limit: devices.allow = c 1:3 rwm
  4. [runtime] pivot_root: /b/rootfs is now /
       $ pivot_root . .
ID   PID  STATUS
web  42   created
"""


def test_short_text_is_not_folded_long_text_is():
    assert fold("a\nb").summary == "a\nb" and "<details" not in fold("a\nb")._repr_html_()
    text = "\n".join(f"line {i}" for i in range(40))
    f = fold(text)
    assert f.summary.splitlines()[-1] == "… (32 more lines)" and f.label == "all 40 lines"
    html = f._repr_html_()
    assert "<details class='ocilearn-fold'>" in html and "line 39" in html
    assert str(f).endswith("line 39")  # nothing hidden outside Jupyter


def test_explain_summary_names_the_stages_in_order():
    f = explain_summary(EXPLAIN, head=["$ ocilearn --explain create"])
    assert f.summary.splitlines() == ["$ ocilearn --explain create",
                                      "4 steps: create → cgroup limit ×2 → pivot_root",
                                      "ID   PID  STATUS", "web  42   created"]
    assert "$ runc create --bundle /b web" in f.text and "web  42" not in f.text
    assert "<details" in f._repr_html_()


def test_steps_table_folds_with_a_summary():
    with explain.recording() as steps:
        for i in range(12):
            explain.step("layout", "put blob" if i < 10 else "write index", f"blob {i}")
    assert steps.summary() == "12 steps: put blob ×10 → write index ×2"
    html = steps._repr_html_()
    assert html.startswith("<p>12 steps: put blob ×10") and "<details>" in html and "blob 11" in html


def test_shell_line_reads_back_and_has_no_splicing():
    args = ["/bin/sh", "-c", "echo $$ $(tr '\\0' ' ' < /proc/1/cmdline)", "a b", "plain", ""]
    line = shell_line(args)
    assert "'\"'\"'" not in line
    # sh(1) itself reads the line back into the same words
    out = subprocess.run(["sh", "-c", f"for a in {line}; do printf '%s\\0' \"$a\"; done"],
                         capture_output=True, text=True, check=True).stdout
    assert out.split("\0")[:-1] == args


def test_source_is_folded_with_its_first_doc_sentence():
    f = source(fold)
    assert f.summary.startswith("ocilearn.views.fold.fold — Fold `text` when it is longer than")
    assert "def fold(" in f.text and "<details" in f._repr_html_()


def test_table_fits_and_folds():
    rows = [{"url": "http://127.0.0.1/v2/" + "x" * 200, "status": 200}] * 20
    t = Table(["url", "status"], rows)
    html = t._repr_html_()
    assert "table-layout:fixed;width:100%" in html and "overflow-wrap:anywhere" in html
    assert html.count("<tr>") == 1 + 12 + 1 + 20 and "all 20 rows" in html
