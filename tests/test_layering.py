"""The import layering of docs/architecture.md, held against the code.

Every ``import`` / ``from ... import`` in ``src/authbroker`` (module level and inside
functions: a lazy import is still a dependency) is read with :mod:`ast`, and these
rules must hold:

* the kernel imports nothing above it (no service, provider, web, CLI or testing code);
* providers never import web, CLI, engines or testing code;
* engines never import web, CLI or testing code;
* nothing in the library imports ``authbroker.testing`` except the demo and the CLI
  (a production ``Broker`` never starts a simulator).

A deprecation shim (a module whose only job is to re-export a moved module) is exempt
from the rule of the package it stands in.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "authbroker"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _shim_imports(tree: ast.AST) -> set[int]:
    """ids of import nodes inside a function that emits a DeprecationWarning: a
    module ``__getattr__`` that hands a moved name on (kept one minor release)."""
    skip: set[int] = set()
    for func in ast.walk(tree):
        if isinstance(func, ast.FunctionDef) and any(
            isinstance(n, ast.Name) and n.id == "DeprecationWarning" for n in ast.walk(func)
        ):
            skip.update(id(n) for n in ast.walk(func) if isinstance(n, ast.ImportFrom | ast.Import))
    return skip


def _imports(path: Path) -> set[str]:
    """Absolute names of every authbroker module ``path`` imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = _module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: set[str] = set()
    shim = _shim_imports(tree)
    for node in ast.walk(tree):
        if id(node) in shim:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)
    return {name for name in found if name == "authbroker" or name.startswith("authbroker.")}


def _is_shim(path: Path) -> bool:
    text = path.read_text(encoding="utf-8")
    return "DeprecationWarning" in text and len(text.splitlines()) < 60


def _modules(prefix: str) -> list[Path]:
    base = PKG.joinpath(*prefix.split(".")[1:])
    if base.with_suffix(".py").is_file():
        return [base.with_suffix(".py")]
    return sorted(base.rglob("*.py")) if base.is_dir() else []


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


TESTING = ("authbroker.testing", "authbroker.simulators")
WEB_CLI = ("authbroker.web", "authbroker.cli", "authbroker.integrations")
SERVICES = (
    "authbroker.engines",
    "authbroker.broker",
    "authbroker.links",
    "authbroker.credentials",
    "authbroker.tokens",
    "authbroker.sessions",
)

RULES = [
    (
        "authbroker.kernel",
        TESTING + WEB_CLI + SERVICES + ("authbroker.providers", "authbroker.crypto"),
    ),
    ("authbroker.providers", (*TESTING, *WEB_CLI, "authbroker.engines", "authbroker.broker")),
    ("authbroker.engines", TESTING + WEB_CLI),
    (
        "authbroker.crypto",
        (*TESTING, *WEB_CLI, *SERVICES, "authbroker.flow", "authbroker.providers"),
    ),
]


@pytest.mark.parametrize(("layer", "forbidden"), RULES, ids=[r[0] for r in RULES])
def test_layer_imports_nothing_above_it(layer: str, forbidden: tuple[str, ...]) -> None:
    broken = []
    for path in _modules(layer):
        if _is_shim(path):
            continue
        for name in sorted(_imports(path)):
            if _under(name, forbidden):
                broken.append(f"{path.relative_to(SRC)} imports {name}")
    assert not broken, "\n".join(broken)


def test_only_the_demo_and_the_cli_import_testing() -> None:
    allowed = (
        "authbroker.testing",
        "authbroker.simulators",
        "authbroker.web.demo",
        "authbroker.cli",
    )
    broken = []
    for path in sorted(PKG.rglob("*.py")):
        module = _module_name(path)
        if _under(module, allowed) or _is_shim(path):
            continue
        for name in sorted(_imports(path)):
            if _under(name, TESTING):
                broken.append(f"{path.relative_to(SRC)} imports {name}")
    assert not broken, "\n".join(broken)


def test_the_scanner_sees_relative_and_lazy_imports(tmp_path: Path) -> None:
    """The rules cannot pass vacuously: the scanner resolves what the code imports."""
    path = PKG / "providers" / "base.py"
    names = _imports(path)
    assert names, "providers/base.py imports authbroker modules"
    assert all(n.startswith("authbroker") for n in names)
    kernel = _imports(PKG / "kernel" / "runtime.py")
    assert "authbroker.http" in kernel and "authbroker.kernel.effects" in kernel
