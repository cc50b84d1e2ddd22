"""The package map of docs/architecture.md, enforced by reading every module's imports.

Every ``import`` and ``from … import`` statement of every module under ``ocilearn/`` is read
with :mod:`ast` — those inside functions and methods too, since a lazy import is still a
dependency — and checked against the dependency rule:

    core ← image ← layer ← bundle;  image ← distribution;  runtime uses core only;
    views, cli and course may use anything.

A lower package may import a view only inside a ``_repr_*_`` method (Jupyter's display
protocol: an object draws itself when a notebook shows it). No import cycles between
modules, and the third-party packages each module imports are declared in pyproject.toml
where that module is installed.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "ocilearn"

#: package -> the packages it may import (itself included)
ALLOWED = {
    "core": {"core"},
    "image": {"core", "image"},
    "layer": {"core", "image", "layer"},
    "bundle": {"core", "image", "layer", "bundle"},
    "distribution": {"core", "image", "distribution"},
    "runtime": {"core", "runtime"},
}
UPPER = {"top", "views", "cli", "course", "entry", "__main__"}  # may use anything

#: third-party modules the runtime path must never import (start-up time, issue: `ocilearn run`)
NOT_ON_RUNTIME_PATH = {"requests", "urllib3", "click", "graphviz", "ipywidgets", "IPython", "tqdm"}

#: import name -> distribution name on PyPI, where they differ
DIST_NAME = {"yaml": "pyyaml", "IPython": "ipython", "isal": "isal", "seccomp": "pyseccomp"}


def module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_of(mod: str) -> str:
    """``ocilearn.image.layout`` -> ``image``; the top package itself counts as core."""
    parts = mod.split(".")
    if len(parts) == 1:
        return "top"  # ocilearn/__init__.py: show_source (IPython inside the function)
    return parts[1]


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def imports_of(mod: str, path: Path) -> list[tuple[str, int, str]]:
    """(imported module, line, enclosing function name or "") for every import statement;
    relative imports resolved against ``mod``."""
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    out: list[tuple[str, int, str]] = []

    def visit(node: ast.AST, func: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and ast.unparse(child.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
                continue  # annotations only: never imported at run time
            name = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else func
            if isinstance(child, ast.Import):
                out.extend((a.name, child.lineno, func) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    base = base[: len(base) - child.level + 1]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                for a in child.names:  # `from pkg import module` imports pkg.module
                    sub = f"{target}.{a.name}"
                    out.append((sub if sub in ALL_MODULES else target, child.lineno, func))
            visit(child, name)

    visit(tree, "")
    return out


ALL_MODULES = set(modules())


def internal_edges() -> list[tuple[str, str, int, str]]:
    edges = []
    for mod, path in modules().items():
        for target, line, func in imports_of(mod, path):
            if target == "ocilearn" or target.startswith("ocilearn."):
                while target not in ALL_MODULES and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target != mod:
                    edges.append((mod, target, line, func))
    return edges


def test_every_module_is_in_a_known_package():
    unknown = sorted(m for m in ALL_MODULES if package_of(m) not in ALLOWED and package_of(m) not in UPPER)
    assert not unknown, f"modules outside the package map of docs/architecture.md: {unknown}"


def test_dependency_direction():
    bad = []
    for mod, target, line, func in internal_edges():
        src, dst = package_of(mod), package_of(target)
        if src in UPPER or dst in ALLOWED.get(src, set()):
            continue
        if dst == "views" and func.startswith("_repr_") and func.endswith("_"):
            continue  # Jupyter's display protocol: an object draws itself
        bad.append(f"{mod}:{line} imports {target} ({src} may use only {sorted(ALLOWED[src])})")
    assert not bad, "dependency rule broken:\n" + "\n".join(bad)


def test_no_import_cycles():
    graph: dict[str, set[str]] = {m: set() for m in ALL_MODULES}
    for mod, target, _line, _func in internal_edges():
        graph[mod].add(target)
    # Tarjan's strongly connected components
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(10000)

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    # a package's __init__ importing nothing keeps parents out of cycles; report the rest
    assert not cycles, f"import cycles: {cycles}"


def test_runtime_path_imports_no_heavy_packages():
    bad = []
    for mod, path in modules().items():
        if package_of(mod) not in ("runtime", "core", "top"):
            continue
        for target, line, func in imports_of(mod, path):
            if package_of(mod) == "top" and func:
                continue  # the top package's functions are not on the runtime path
            if target.split(".")[0] in NOT_ON_RUNTIME_PATH:
                bad.append(f"{mod}:{line} imports {target}")
    assert not bad, "the runtime path (runtime/, core/) must not import these:\n" + "\n".join(bad)


def _declared() -> dict[str, set[str]]:
    """pyproject.toml: "base" and each extra -> normalised distribution names."""
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]

    def names(reqs: list[str]) -> set[str]:
        out = set()
        for r in reqs:
            n = r.split(";")[0]
            for sep in "<>=!~[ ":
                n = n.split(sep)[0]
            out.add(n.strip().lower().replace("_", "-"))
        return out

    decl = {"base": names(meta.get("dependencies", []))}
    for extra, reqs in meta.get("optional-dependencies", {}).items():
        decl[extra] = names(reqs)
    return decl


def _third_party(path: Path, mod: str) -> set[str]:
    std = set(sys.stdlib_module_names)
    return {t.split(".")[0] for t, _l, _f in imports_of(mod, path)
            if t and not t.startswith("ocilearn") and t.split(".")[0] not in std and t.split(".")[0] != "_socket"}


def test_pyproject_declares_what_the_library_imports():
    """A module of the library proper (everything but views and course, which come with
    the ``lab`` extra) may import only base dependencies; views and course may also use
    the ``lab`` extra."""
    decl = _declared()
    missing = []
    for mod, path in modules().items():
        pkg = package_of(mod)
        allowed = decl["base"] | (decl.get("lab", set()) if pkg in ("views", "course", "top") else set())
        for name in sorted(_third_party(path, mod)):
            dist = DIST_NAME.get(name, name).lower().replace("_", "-")
            if dist not in allowed:
                missing.append(f"{mod} imports {name} (distribution {dist!r}) — not declared "
                               f"{'in the base dependencies or the lab extra' if pkg in ('views', 'course', 'top') else 'in the base dependencies'}")
    assert not missing, "\n".join(missing)


def test_every_declared_dependency_is_used():
    """No dependency without an importer: base ones in ocilearn/, extras anywhere in the
    repository (tests, bench, scripts, notebooks)."""
    decl = _declared()
    used: set[str] = set()
    for mod, path in modules().items():
        used |= {DIST_NAME.get(n, n).lower().replace("_", "-") for n in _third_party(path, mod)}
    unused = sorted(d for d in decl["base"] if d not in used)
    assert not unused, f"base dependencies no module of ocilearn imports: {unused}"


@pytest.mark.parametrize("mod", sorted(m for m in ALL_MODULES if package_of(m) in ALLOWED))
def test_lower_packages_import_no_view_at_module_level(mod):
    """Importing a library module must not drag in graphviz or ipywidgets."""
    for target, line, func in imports_of(mod, modules()[mod]):
        if not func:
            assert target.split(".")[0] not in ("graphviz", "ipywidgets", "IPython"), f"{mod}:{line} imports {target} at module level"
