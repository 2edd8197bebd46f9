"""The shape of the package, read from its import graph: the data path reads straight through
(corpus → clean → passages → models → stores → search → hits), storage backends stand side by
side behind one protocol, and the CLI only talks to the public objects."""

from __future__ import annotations

import ast
from pathlib import Path

import semsearch

PACKAGE = Path(semsearch.__file__).parent
STORES = ("semsearch.stores.faiss", "semsearch.stores.milvus")


def _is_module(name: str) -> bool:
    path = PACKAGE.joinpath(*name.split(".")[1:])
    return path.is_dir() or path.with_suffix(".py").is_file()


def imports(module: str) -> set[str]:
    """Every semsearch module `module` imports, at any depth of its code (lazy imports too)."""
    path = PACKAGE.joinpath(*module.split(".")[1:])
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("semsearch"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names
                         if _is_module(f"{node.module}.{a.name}"))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("semsearch"))
    return found


def test_no_store_imports_another() -> None:
    for store in STORES:
        others = set(STORES) - {store}
        assert not imports(store) & others, store


def test_search_imports_only_the_query_path() -> None:
    allowed = {"semsearch.stores.base", "semsearch.fusion", "semsearch.filters",
               "semsearch.models.encoder", "semsearch.errors", "semsearch.passages",
               "semsearch.lexical", "semsearch.deadline", "semsearch.context", "semsearch"}
    assert imports("semsearch.search") <= allowed, imports("semsearch.search") - allowed


def test_nothing_outside_the_integrations_imports_them() -> None:
    """The framework adapters are optional: no other module reaches them (issue 25)."""
    modules = [".".join(("semsearch", *p.relative_to(PACKAGE).with_suffix("").parts))
               .removesuffix(".__init__") for p in PACKAGE.rglob("*.py")
               if "data" not in p.relative_to(PACKAGE).parts]
    outside = [m for m in modules if not m.startswith("semsearch.integrations")]
    assert "semsearch.cli" in outside and "semsearch.integrations.langchain" in modules
    for module in outside:
        assert not {i for i in imports(module) if i.startswith("semsearch.integrations")}, module


def test_each_runtime_module_stands_alone() -> None:
    """onnx.py and openvino.py imported each other (issue 36); sessions.py chooses the session
    and imports neither the runner nor the encoder."""
    runtimes = {"semsearch.models.onnx", "semsearch.models.openvino"}
    for module in runtimes:
        assert not imports(module) & (runtimes - {module}), module
    assert not imports("semsearch.models.sessions") & {"semsearch.models.onnx",
                                                         "semsearch.models.encoder"}


def test_cli_has_no_store_plumbing() -> None:
    found = imports("semsearch.cli")
    assert not {m for m in found if m.startswith("semsearch.stores.")}, found
    assert not found & {"semsearch.search.Index", "semsearch.checkpoint"}


def test_every_error_is_importable_from_the_package() -> None:
    from semsearch import errors

    for name in errors.__all__:
        assert getattr(semsearch, name) is getattr(errors, name)


def test_a_wheel_carries_the_seeds_index_and_queries(tmp_path: Path) -> None:
    """A non-editable install has the default index and labelled queries (issue 13: they were
    paths beside the source tree)."""
    import subprocess
    import sys
    import zipfile

    repo = PACKAGE.parent
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(repo)], check=True, timeout=300,
                   capture_output=True)
    (wheel,) = tmp_path.glob("semsearch-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    from semsearch.stores import DEFAULT_INDEX
    from semsearch.stores.generations import live_dir

    live = live_dir(DEFAULT_INDEX)
    shipped = {f"semsearch/{p.relative_to(PACKAGE).as_posix()}" for p in live.rglob("*")
               if p.is_file()} | {"semsearch/data/indexes/seeds/CURRENT",
                                  "semsearch/data/qrels/seeds.jsonl", "semsearch/py.typed"}
    assert shipped <= names, shipped - names


READERS = ("semsearch.readers.text", "semsearch.readers.html", "semsearch.readers.pdf",
           "semsearch.readers.docx", "semsearch.readers.records")


def test_readers_stand_side_by_side_below_the_corpus() -> None:
    """One module per format (issue 37): a reader imports only the readers' shared base (and
    leaf helpers), never another reader nor the corpus walker that dispatches to it."""
    assert imports("semsearch.corpus") >= set(READERS)
    for reader in READERS:
        found = imports(reader)
        assert not found & (set(READERS) - {reader}), reader
        assert "semsearch.corpus" not in found, reader
        assert not {m for m in found if m.startswith(("semsearch.stores", "semsearch.search",
                                                      "semsearch.index"))}, reader
