"""The package's layers, read from the source with ``ast`` (nothing is imported): no import circles, the
library never imports the command line, and the bytes-and-sockets packages never reach torch or the model.
Imports inside functions count too: a deferred import is still a dependency."""
import ast
import os
from functools import lru_cache


from .conftest import ROOT

PACKAGE = os.path.join(ROOT, "audiocodec")
TORCH_FREE = ("audiocodec.bitstream", "audiocodec.transport")  # ... except their command-line modules


def _name(path: str) -> str:
    rel = os.path.relpath(path, ROOT)[:-3].split(os.sep)
    return ".".join(rel[:-1] if rel[-1] == "__init__" else rel)


@lru_cache(maxsize=1)
def modules() -> dict[str, str]:
    """module name -> file path, for every module under audiocodec/."""
    found = {}
    for folder, _, files in os.walk(PACKAGE):
        for f in files:
            if f.endswith(".py"):
                found[_name(os.path.join(folder, f))] = os.path.join(folder, f)
    return found


def _package(name: str) -> str:
    return name if modules()[name].endswith("__init__.py") else name.rpartition(".")[0]


@lru_cache(maxsize=None)
def imports(name: str) -> tuple[frozenset, frozenset]:
    """(the audiocodec modules ``name`` imports, the top-level names of the other packages it imports)."""
    tree = ast.parse(open(modules()[name]).read())
    inside, outside = set(), set()

    def add(target: str) -> None:
        if target.split(".")[0] != "audiocodec":
            outside.add(target.split(".")[0])
        else:
            while target not in modules():  # an attribute of a module: the module
                target = target.rpartition(".")[0]
            inside.add(target)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = _package(name).split(".")
                pkg = pkg[:len(pkg) - node.level + 1]
                base = ".".join(pkg + ([node.module] if node.module else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                add(full if full in modules() else base)
    inside.discard(name)
    return frozenset(inside), frozenset(outside)


def reach(name: str) -> set[str]:
    """Every audiocodec module ``name`` depends on, directly or through others (itself included)."""
    seen, todo = {name}, [name]
    while todo:
        for m in imports(todo.pop())[0] - seen:
            seen.add(m)
            todo.append(m)
    return seen


def is_cli(name: str) -> bool:
    return name in ("audiocodec.cli", "audiocodec.__main__") or name.split(".")[-1] == "commands"


def circles(names) -> list[set[str]]:
    """The import circles among ``names``: groups of modules that each reach all the others."""
    names = set(names)
    out, done = [], set()
    for m in sorted(names):
        if m in done:
            continue
        group = {o for o in reach(m) & names if m in reach(o)}
        done |= group
        if len(group) > 1:
            out.append(group)
    return out


def test_every_module_is_read():
    assert {"audiocodec.compress", "audiocodec.stream.frames", "audiocodec.transport.packets"} <= set(modules())
    assert "audiocodec.stream.modes" in imports("audiocodec.transport.commands")[0]
    assert "torch" in imports("audiocodec.stream.decoder")[1]


def test_no_import_circles():
    assert circles(modules()) == []


def test_the_library_never_imports_the_command_line():
    wrong = {m: sorted(filter(is_cli, imports(m)[0])) for m in modules() if not is_cli(m)}
    assert {m: cli for m, cli in wrong.items() if cli} == {}


def test_bytes_and_sockets_never_reach_torch_or_the_model():
    for m in modules():
        if m.startswith(TORCH_FREE) and not is_cli(m):
            deps = reach(m)
            assert not {d for d in deps if d == "audiocodec.model" or d.startswith("audiocodec.model.")}, m
            assert not [d for d in deps if "torch" in imports(d)[1]], m
