"""LangChain's own standard retriever suite (`langchain-tests`' RetrieversIntegrationTests, in
the dev extra) over the LangChain retriever: on the seeds indexed with the tiny model (fast), on
the shipped seeds index (FAISS) and on the same index migrated into Milvus Lite (both slow: the
real model embeds the queries)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_tests.integration_tests import RetrieversIntegrationTests

import semsearch
from semsearch.integrations.langchain import SemsearchRetriever

QUERY = "夫妻党员抗疫"


class _Semsearch(RetrieversIntegrationTests):
    """The suite's settings for a semsearch retriever; `opened` is set by each subclass's
    fixture (the suite reads the constructor's parameters as a property)."""

    opened: semsearch.Index | None = None

    @property
    def retriever_constructor(self) -> type[SemsearchRetriever]:
        return SemsearchRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"index": self.opened}

    @property
    def retriever_query_example(self) -> str:
        return QUERY


class TestTinyIndex(_Semsearch):
    @pytest.fixture(autouse=True)
    def _index(self, tiny_index: Path) -> None:
        type(self).opened = semsearch.load(tiny_index)


class TestSeedsFaiss(_Semsearch):
    @pytest.fixture(autouse=True)
    def _index(self, real_model: Path) -> None:
        if type(self).opened is None:
            type(self).opened = semsearch.open()  # the shipped seeds index


@pytest.fixture(scope="module")
def seeds_milvus(tmp_path_factory: pytest.TempPathFactory) -> semsearch.Index:
    pytest.importorskip("milvus_lite")
    from semsearch.stores import milvus

    uri = str(tmp_path_factory.mktemp("milvus") / "seeds.db")
    store, _ = milvus.migrate(semsearch.open().store, uri)
    store.close()
    return semsearch.connect(uri)


class TestSeedsMilvusLite(_Semsearch):
    @pytest.fixture(autouse=True)
    def _index(self, real_model: Path, seeds_milvus: semsearch.Index) -> None:
        type(self).opened = seeds_milvus
