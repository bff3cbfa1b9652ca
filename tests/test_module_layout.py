"""Issue 17: the crypto layer and the protocol packages, their shims and their layering.

The old import paths keep working for one minor release, but warn; the library itself
never imports them (a shim imported by the library would warn in every application).
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "authbroker"

#: old module -> new module, for the moves of issue 17 (crypto layer).
SHIMS = {
    "authbroker.jose": "authbroker.crypto.jose",
    "authbroker.pki": "authbroker.crypto.pki",
    "authbroker.cms": "authbroker.crypto.cms",
    "authbroker.providers.ftn": "authbroker.providers.oidc.profiles.ftn",
    "authbroker.providers.tara": "authbroker.providers.oidc.profiles.tara",
    "authbroker.providers.bankid_no": "authbroker.providers.oidc.profiles.bankid_no",
    "authbroker.providers.broker_oidc": "authbroker.providers.oidc.profiles.broker_oidc",
    "authbroker.providers.bankid_se_messages": "authbroker.providers.bankid_se.messages",
}

#: What the protocol packages must not import (issue 17 layering).


def _fresh_import(name: str) -> tuple[object, list[warnings.WarningMessage]]:
    sys.modules.pop(name, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(name)
    return module, list(caught)


@pytest.mark.parametrize(("old", "new"), sorted(SHIMS.items()))
def test_old_path_warns_and_reexports(old: str, new: str) -> None:
    target = importlib.import_module(new)
    module, caught = _fresh_import(old)
    messages = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
    assert f"{old} moved to {new}" in messages
    public = target.__all__  # type: ignore[attr-defined]
    assert public
    for name in public:
        assert getattr(module, name) is getattr(target, name), name


def _imports(path: Path) -> list[str]:
    """Absolute names of the authbroker modules ``path`` imports (relative ones resolved)."""
    package = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
    if path.name == "__init__.py":
        package = package.removesuffix(".__init__")
    else:
        package = package.rpartition(".")[0]
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.append(module)
            found.extend(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return [m for m in found if m.startswith("authbroker")]


def test_library_never_imports_a_shim() -> None:
    offenders = [
        f"{path.relative_to(SRC)} imports {module}"
        for path in SRC.rglob("*.py")
        for module in _imports(path)
        if module in SHIMS
    ]
    assert offenders == []


def test_claim_profiles_resolve_to_the_new_modules() -> None:
    from authbroker.providers.oidc import PROFILE_MODULES

    for name, module in PROFILE_MODULES.items():
        assert module.startswith("authbroker.providers.oidc.profiles."), name
        assert callable(importlib.import_module(module).map_identity)


def test_importing_the_library_emits_no_deprecation_warning() -> None:
    """A fresh interpreter importing every public module of the library stays silent."""
    code = (
        "import warnings; warnings.simplefilter('error', DeprecationWarning)\n"
        "import authbroker, authbroker.crypto.jose, authbroker.crypto.pki, authbroker.crypto.cms\n"
        "import authbroker.cli.keys, authbroker.engines.tokens\n"
        "import authbroker.providers.registry as r\n"
        "from authbroker.providers.oidc import PROFILE_MODULES as p\n"
        "import importlib\n"
        "for name in r.BUILTIN_PROTOCOLS: r.protocol_options(name)\n"
        "for module in p.values(): importlib.import_module(module)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
