"""ocilearn.views.graph: the DAG index.json → index → manifests → config + layers, drawn by dot."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from conftest import REPO, built_image, require_tool

from ocilearn.image import embedded
from ocilearn.image.layout import ImageLayout
from ocilearn.views.graph import ImageGraph, draw, human_size


def _svg_texts(svg: str) -> list[str]:
    root = ET.fromstring(svg.encode())
    return ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]


def test_multiarch_graph_nodes_edges_and_real_svg():
    require_tool("dot")
    lay = ImageLayout.open(built_image("multiarch"))
    g = draw(lay)
    idx = lay.refs()["latest"]
    amd = lay.resolve("latest", "linux/amd64")
    arm = lay.resolve("latest", "linux/arm64/v8")
    kinds = sorted(n.kind for n in g.nodes.values())
    assert kinds == ["config", "config", "index", "index.json", "layer", "layer", "manifest", "manifest"]
    assert len(g.edges) == 7
    svg = g.svg()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    texts = _svg_texts(svg)
    shorts = [idx.digest, amd.digest, arm.digest, amd.manifest.config.digest, *[d.digest for d in amd.manifest.layers + arm.manifest.layers]]
    for d in shorts:
        assert f"sha256:{d.encoded[:12]}" in texts, d
    assert "linux/arm64/v8" in texts and "latest" in texts  # edge labels: platform, ref
    layer = amd.manifest.layers[0]
    assert human_size(layer.size) in texts and human_size(layer.size) == f"{layer.size / 1024 / 1024:.1f} MiB"
    # the graph's SVG is exactly what `dot -Tsvg` makes of its DOT source
    dot = subprocess.run(["dot", "-Tsvg"], input=g.digraph().source, capture_output=True, text=True, check=True).stdout
    assert _svg_texts(dot) == texts


def test_ref_filter_and_shared_blobs(tmp_path):
    from ocilearn.image import build as ib

    lay = ImageLayout.init(tmp_path / "l")
    common = [ib.file("shared.txt", "same layer\n")]
    a = ib.build_image(tmp_path / "l", [common], ref="a", cmd=["a"])
    b = ib.build_image(tmp_path / "l", [common], ref="b", cmd=["b"])
    g = ImageGraph(lay)
    layers = [n for n in g.nodes.values() if n.kind == "layer"]
    assert len(layers) == 1  # one blob, one node, two arrows into it
    assert sum(1 for e in g.edges if e.dst == layers[0].id) == 2
    only_a = ImageGraph(lay, ref="a")
    assert {n.digest for n in only_a.nodes.values() if n.kind == "manifest"} == {a.digest}
    assert b.digest not in {n.digest for n in only_a.nodes.values()}


def test_missing_blob_is_a_red_node_not_an_error(tmp_path):
    lay = embedded.copy_to(tmp_path / "e")
    img = lay.resolve("latest")
    lay.blob_path(img.manifest.layers[0].digest).unlink()
    g = ImageGraph(lay)
    (bad,) = [n for n in g.nodes.values() if n.problem]
    assert bad.digest == img.manifest.layers[0].digest and "MISSING" in bad.notes
    assert 'color="red"' in g.digraph().source or "color=red" in g.digraph().source


def test_jupyter_mimebundle_and_text():
    require_tool("dot")
    g = draw(embedded.open())
    bundle = g._repr_mimebundle_()
    assert set(bundle) == {"image/svg+xml", "text/plain"}
    assert "<svg" in bundle["image/svg+xml"]
    img = embedded.open().resolve("latest")
    assert f"manifest sha256:{img.digest.short}" in bundle["text/plain"]
    assert bundle["text/plain"].splitlines()[0].startswith("index.json sha256:")


def test_import_does_not_load_graphviz():
    """Building the graph (and printing it as text) never imports the graphviz package."""
    code = "import sys, ocilearn.image.embedded, ocilearn.views.graph; print(ocilearn.views.graph.ImageGraph(ocilearn.image.embedded.open())); print('graphviz' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO).stdout.strip()
    assert out.splitlines()[-1] == "False" and out.startswith("index.json sha256:")


@pytest.mark.parametrize("n, text", [(0, "0 B"), (476, "476 B"), (1024, "1.0 KiB"), (1089189, "1.0 MiB"), (55760440, "53.2 MiB"), (3 * 1024**3, "3.0 GiB")])
def test_human_size(n, text):
    assert human_size(n) == text
    assert re.fullmatch(r"\d+ B|\d+\.\d (KiB|MiB|GiB)", text)


@pytest.mark.filterwarnings("ignore:.*descriptor says:UserWarning")
def test_regclient_testrepo_graph_matches_walk_and_subjects():
    """regclient's testrepo: referrers (``subject``), artifacts, shared layers, two refs on one index."""
    from conftest import shared_path

    lay = ImageLayout.open(shared_path("fixtures", "regclient", "testrepo"))
    g = ImageGraph(lay)
    walked = {d.digest for d, _ in lay.walk()}
    assert {n.digest for n in g.nodes.values() if n.kind != "index.json"} == walked
    subjects = [e for e in g.edges if e.label == "subject"]
    assert subjects and all(e.dashed for e in subjects)
    v3 = ImageGraph(lay, ref="v3")
    top = [e for e in v3.edges if e.src == "index_json"]
    assert [e.label for e in top] == ["v3"] and v3.nodes[top[0].dst].digest == lay.refs()["v3"].digest
    assert sorted(e.label for e in v3.edges if e.src == top[0].dst) == ["linux/amd64", "linux/arm/v6", "linux/arm/v7", "linux/arm64"]
