"""Filters on Milvus Lite keep exactly the passages the Python evaluation keeps: the same tree,
evaluated here and rendered by `Filter.to_milvus`, over fields and metadata of mixed types."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from semsearch.errors import QueryError
from semsearch.filters import Filter, compile_filter

from .filter_cases import EXPRESSION, EXPRESSIONS, PASSAGES

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

COLLECTION = "filters"


@pytest.fixture(scope="module")
def lite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A Milvus Lite collection shaped like the Milvus store's (without BM25), holding ROWS."""
    from pymilvus import DataType, MilvusClient

    path: Path = tmp_path_factory.mktemp("filters-milvus") / "x.db"
    client = MilvusClient(str(path))
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=2)
    for name in ("text", "source", "heading"):
        schema.add_field(name, DataType.VARCHAR, max_length=1000)
    for name in ("paragraph", "start", "end"):
        schema.add_field(name, DataType.INT64)
    schema.add_field("metadata", DataType.JSON)
    index = client.prepare_index_params()
    index.add_index("vector", index_type="FLAT", metric_type="IP")
    client.create_collection(COLLECTION, schema=schema, index_params=index,
                             consistency_level="Strong")
    client.insert(COLLECTION, [
        {"id": i, "vector": [1.0, 0.0], "text": p.text, "source": p.source,
         "paragraph": p.paragraph, "start": p.start, "end": p.end, "heading": p.heading,
         "metadata": p.metadata} for i, p in PASSAGES.items()])
    yield client
    client.close()


def _kept(where: Filter) -> set[int]:
    return {i for i, p in PASSAGES.items() if where(p)}


def _found(client: Any, where: Filter) -> set[int]:
    rows = client.query(COLLECTION, filter=where.to_milvus(), output_fields=["id"],
                        limit=len(PASSAGES) + 1)
    return {int(r["id"]) for r in rows}


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_milvus_keeps_what_python_keeps(lite: Any, expression: str) -> None:
    where = compile_filter(expression)
    assert _found(lite, where) == _kept(where), where.to_milvus()


def test_the_expressions_tell_passages_apart() -> None:
    """Each expression keeps some passages and drops others (no vacuous agreement)."""
    vacuous = [e for e in EXPRESSIONS if len(_kept(compile_filter(e))) in (0, len(PASSAGES))]
    assert vacuous == ["True", "source == None"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EXPRESSION)
def test_random_filters_agree(lite: Any, expression: str) -> None:
    """Any filter that renders for Milvus keeps there the passages it keeps here."""
    try:
        where = compile_filter(expression)
        where.to_milvus()
    except QueryError:
        return  # refused (by the grammar, or as unfaithful on Milvus): nothing to compare
    assert _found(lite, where) == _kept(where), where.to_milvus()
