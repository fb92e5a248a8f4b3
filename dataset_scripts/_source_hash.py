"""The cache key of a builder: a hash of the code that builds its dataset, and of nothing else.

`source_files(module)` is the builder's own module, every module of this repository's packages
(`dataset_scripts`, `modeling_mer`) that it imports, followed transitively (imports inside functions
included: read from the source with ast, never listed by hand), and the data files those modules name
(a string constant equal to the name of a file beside them, e.g. "casme_sq_code_final.csv").
`source_hash(module)` hashes their paths and bytes. Every builder passes its own module (the real ones
through `_builder.MERBuilder`, the synthetic ones themselves), so an edit to the synthetic generator
leaves CASME II's cache valid and an edit to a model file that no builder imports (the aggregators)
invalidates none. A package's `__init__.py` counts only where it is imported by name (`import pkg`, or a
name that is not a module taken from it): the packages' own inits hold no building code.

`leave_out` names modules whose imports are not followed (nor hashed): a builder with several
independent modes keys each mode on its own generator (`synthetic.SyntheticMER`).

Imports nothing of the packages it reads: a module that imports it does not pull other code into its key.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
HASHED_PACKAGES = ("dataset_scripts", "modeling_mer")


def imported_modules(path: Path, module: str, is_module: Callable[[str], bool]) -> set[str]:
    """The modules that the source file `path` (module `module`) imports, at any depth of its code.

    Relative imports are resolved against `module`. `from X import n` counts as importing `X.n` when that
    is a module (`is_module`), else `X`; `import a.b.c` as the deepest of a.b.c, a.b, a that is a module.
    Names for which `is_module` holds nowhere (the standard library, third-party packages) are dropped."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def deepest(name: str) -> None:
        while name and not is_module(name):
            name = name.rpartition(".")[0]
        if name:
            found.add(name)

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                deepest(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*parent, base] if base else parent)
            for alias in node.names:
                if is_module(f"{base}.{alias.name}"):
                    found.add(f"{base}.{alias.name}")
                else:
                    deepest(base)
    found.discard(module)
    return found


def module_file(name: str) -> Path | None:
    """The source file of a module of the hashed packages (None for anything else)."""
    if name.split(".")[0] not in HASHED_PACKAGES:
        return None
    base = REPO_ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _named_data_files(path: Path) -> set[Path]:
    """Files beside `path` (not Python sources) whose names appear in it as string constants."""
    beside = {p.name: p for p in path.parent.iterdir() if p.is_file() and p.suffix not in (".py", ".pyc")}
    names = {node.value for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
             if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    return {beside[name] for name in names & beside.keys()}


@functools.cache
def source_files(module: str, leave_out: tuple[str, ...] = ()) -> tuple[Path, ...]:
    """The files the build of a builder defined in `module` depends on (module docstring), sorted."""
    root = module_file(module)
    if root is None:  # a builder defined elsewhere (a test, a user's script): its own file
        root = Path(sys.modules[module].__file__).resolve()
    files: set[Path] = set()
    queue, seen = [(root, module)], {module, *leave_out}
    while queue:
        path, name = queue.pop()
        files.add(path)
        files |= _named_data_files(path)
        for imported in imported_modules(path, name, lambda n: module_file(n) is not None) - seen:
            seen.add(imported)
            queue.append((module_file(imported), imported))
    return tuple(sorted(files))


def source_hash(module: str, leave_out: Iterable[str] = ()) -> str:
    """A short hash of `source_files(module, leave_out)`: their paths and bytes. A changed file never
    reuses a stale cache; a file the build does not depend on never invalidates it."""
    digest = hashlib.sha256()
    for path in source_files(module, tuple(sorted(leave_out))):
        where = path.relative_to(REPO_ROOT).as_posix() if path.is_relative_to(REPO_ROOT) else path.name
        digest.update(where.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


__all__ = ["HASHED_PACKAGES", "REPO_ROOT", "imported_modules", "module_file", "source_files", "source_hash"]
