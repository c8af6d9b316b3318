"""Hatchling build hook: compile the classifier's and the bounce decoder's hot modules with Cython into
``smtplens._accel`` (optional).

Each module of ``smtplens._accel.MODULES`` is copied with its augmenting ``.pxd`` into ``build/accel`` under its
compiled name, the digest of the sources is appended to the copy, and the copy is compiled. A wheel gets the
compiled modules added; an editable install gets them written into ``src/smtplens/_accel`` (git-ignored), where
the package is imported from. Any failure (no Cython, no C compiler, no Python headers) only prints a warning:
the install goes on and the pure-Python modules run. ``SMTPLENS_PURE=1`` at build time skips the compilation.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

ACCEL_DIR = Path("src/smtplens/_accel")
DIRECTIVES = {"language_level": 3, "annotation_typing": False}  # the C types come from the .pxd files only


def _accel_rules(root: Path) -> ModuleType:
    """``smtplens._accel`` itself (standard library only), loaded from its file: the digest and the module list
    have one definition, used here at build time and there at import."""
    spec = importlib.util.spec_from_file_location("_smtplens_accel_rules", root / ACCEL_DIR / "__init__.py")
    if spec is None or spec.loader is None:
        raise ImportError("cannot load src/smtplens/_accel/__init__.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def source_of(root: Path, module: str) -> Path:
    """The file of the pure module ``module`` (``smtplens.x.y``) below ``root``: ``src/smtplens/x/y.py``, or the
    package's ``__init__.py``."""
    base = root / "src" / Path(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def compile_accel(root: Path) -> dict[str, Path]:
    """Compile every accelerated module; the built extension files by module name."""
    from Cython.Build import cythonize  # build requirements, imported only when compiling
    from setuptools import Distribution, Extension
    from setuptools.command.build_ext import build_ext

    rules = _accel_rules(root)
    work = root / "build" / "accel"
    shutil.rmtree(work, ignore_errors=True)
    package = work / "src" / "smtplens" / "_accel"
    package.mkdir(parents=True)
    for init in (package.parent / "__init__.py", package / "__init__.py"):
        init.write_text("")
    extensions = []
    for name, module in rules.MODULES.items():
        source_path = source_of(root, module)
        source = source_path.read_bytes()
        pxd_path = root / ACCEL_DIR / f"{name}.pxd"
        pxd = pxd_path.read_bytes() if pxd_path.exists() else b""
        digest = rules.source_digest(source, pxd)
        copy = package / f"{name}{source_path.suffix}"
        copy.write_bytes(source + f'\n{rules.DIGEST_NAME} = "{digest}"\n'.encode())
        if pxd:
            (package / f"{name}.pxd").write_bytes(pxd)
        extensions.append(Extension(f"smtplens._accel.{name}", [str(copy)]))
    modules = cythonize(extensions, compiler_directives=DIRECTIVES, quiet=True, build_dir=str(work / "c"))
    command = build_ext(Distribution({"ext_modules": modules, "script_name": "hatch_build.py"}))
    command.build_lib = str(work / "lib")
    command.build_temp = str(work / "tmp")
    command.parallel = os.cpu_count() or 1
    command.ensure_finalized()
    command.run()
    return {name: Path(command.get_ext_fullpath(f"smtplens._accel.{name}")) for name in rules.MODULES}


class AccelBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    """Adds the compiled modules to wheels and editable installs; never fails the build."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        if os.environ.get("SMTPLENS_PURE", "") not in ("", "0"):
            print("smtplens: SMTPLENS_PURE is set, the compiled accelerator is not built", file=sys.stderr)
            return
        root = Path(self.root)
        try:
            built = compile_accel(root)
        except Exception as exc:  # whatever stops the compilation, the pure modules still work
            print(
                f"WARNING: smtplens: the compiled accelerator was not built ({type(exc).__name__}: {exc}); "
                "the pure-Python modules will be used (slower classification, same results).",
                file=sys.stderr,
            )
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        for name, path in built.items():
            if version == "editable":  # the package is imported from src/: put the builds there
                for old in (root / ACCEL_DIR).glob(f"{name}.*"):
                    if old.suffix in {".so", ".pyd"}:
                        old.unlink()
                shutil.copy2(path, root / ACCEL_DIR / path.name)
            else:
                build_data["force_include"][str(path)] = f"smtplens/_accel/{path.name}"
        print(f"smtplens: compiled accelerator built: {', '.join(sorted(built))}", file=sys.stderr)
