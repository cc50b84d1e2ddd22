"""ocilearn.course's own functions: the concept map notebook 00 draws."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from conftest import REPO

from ocilearn import course


def _titles(svg: str) -> list[str]:
    return sorted(re.findall(r"<title>([^<]*)</title>", svg))


def test_concept_map_is_drawn_from_package_data():
    """concept_map() draws ocilearn/data/concept-map.dot with graphviz: the seven things of
    the course as nodes, the six steps as edges, each step's reference tool and ocilearn
    command on its arrow; Jupyter shows it inline (it works whatever directory the server
    serves, unlike a Markdown image link)."""
    m = course.concept_map()
    assert m._repr_svg_() == m.svg and m.svg.lstrip().startswith("<?xml")
    titles = _titles(m.svg)
    for node in ("registry", "index", "manifest", "config", "layers", "bundle", "container"):
        assert node in titles, titles
    for edge in ("registry&#45;&gt;index", "index&#45;&gt;manifest", "manifest&#45;&gt;config", "manifest&#45;&gt;layers",
                 "config&#45;&gt;bundle", "layers&#45;&gt;bundle", "bundle&#45;&gt;container"):
        assert edge in titles, titles
    text = " ".join(re.findall(r">([^<>]+)</text>", m.svg))
    for words in ("skopeo copy", "ocilearn copy", "umoci unpack", "ocilearn unpack", "runc create / start / exec"):
        assert words in text, text


def test_the_readmes_picture_is_the_same_map():
    """docs/concept-map.svg (what the README shows) has the nodes and edges of a fresh
    drawing of the package's .dot, so the two cannot drift apart."""
    fresh = subprocess.run(["dot", "-Tsvg", str(REPO / "ocilearn/data/concept-map.dot")], capture_output=True,
                           text=True, check=True).stdout
    assert _titles(Path(REPO / "docs/concept-map.svg").read_text()) == _titles(fresh)
