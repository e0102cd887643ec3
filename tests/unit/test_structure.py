"""The package's shape: no import cycle, library internals only behind the fence, its self-check.

Read from the source with ``ast`` (no imports of mteb needed), so they run in a second.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "rag_eval"
LIBRARIES = ("mteb", "sentence_transformers", "huggingface_hub", "datasets", "transformers", "modelscope",
             "hydra", "omegaconf")


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """rag_eval modules ``name`` imports, at module level or inside functions."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import: climb from the module's package
                parents = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parents + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in modules else base)
    return {m for m in found if m in modules and m != name}


def test_no_import_cycle():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    # a package's own __init__ re-exporting its submodules is not a cycle; anything else is
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if node.startswith(nxt + ".") and modules[nxt].name == "__init__.py":
                continue  # a submodule importing its parent package (e.g. ``from rag_eval import _compat``)
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if not state.get(nxt):
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if not state.get(name):
            visit(name)


def test_library_internals_only_behind_the_fence():
    """No ``_private`` name of mteb / sentence-transformers / HF outside rag_eval/_compat.py, nor another
    object's ``__dict__`` (a dunder, yet the same reach into an object's internals)."""
    offenders = []
    for name, path in _modules().items():
        if name == "rag_eval._compat":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in LIBRARIES:
                parts = node.module.split(".") + [a.name for a in node.names]
                if any(p.startswith("_") and not p.startswith("__") for p in parts):
                    offenders.append(f"{path.name}:{node.lineno} from {node.module} import ...")
            if isinstance(node, ast.Attribute) and node.attr == "__dict__":
                owner = node.value
                if not (isinstance(owner, ast.Name) and owner.id in ("self", "cls")):
                    offenders.append(f"{path.name}:{node.lineno} .__dict__")
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                owner = node.value
                if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                    continue
                if isinstance(owner, ast.Name) and owner.id in {"hub", "hub_mod", "_compat", "os", "sys"}:
                    continue  # rag_eval's own modules, and the standard library
                offenders.append(f"{path.name}:{node.lineno} .{node.attr}")
    assert not offenders, offenders


def test_self_check_names_library_and_version(monkeypatch):
    from importlib import metadata

    from sentence_transformers import SentenceTransformer

    from rag_eval import _compat

    monkeypatch.setattr(_compat, "_checked", False)
    _compat.check()  # the installed libraries pass
    monkeypatch.setattr(_compat, "_checked", False)
    for cls in SentenceTransformer.__mro__[1:]:
        if "_input_length" in vars(cls):
            monkeypatch.delattr(cls, "_input_length")
    with pytest.raises(_compat.LibraryMismatch) as info:
        _compat.check()
    msg = str(info.value)
    version = metadata.version("sentence-transformers")
    assert msg.startswith(f"sentence-transformers {version} lacks SentenceTransformer._input_length")
    assert "pip install 'sentence-transformers>=6.2,<7'" in msg and "\n" not in msg
