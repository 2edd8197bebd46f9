"""The CLI's query encoder starts without repacking its weights (the cold query is the main
job); everything else keeps onnxruntime's default, and both give the same vectors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from semsearch import cli
from semsearch.models import encoder as encoder_module
from semsearch.models.onnx import OnnxRunner

TEXTS = ["夫妻党员抗疫", "志愿者为居民送菜", "who donated masks?"]


def test_unpacked_session_gives_the_same_vectors(tiny_model: Path) -> None:
    packed = OnnxRunner.open(tiny_model)
    unpacked = OnnxRunner.open(tiny_model, prepack=False)
    ids = packed.ids(TEXTS)
    np.testing.assert_allclose(unpacked.embed_ids(ids), packed.embed_ids(ids), atol=1e-5)


@pytest.mark.parametrize(("queries", "one_shot"), [(1, True), (cli.ONE_SHOT_QUERIES + 1, False)])
def test_cli_query_loads_a_one_shot_encoder(tiny_model: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch, queries: int,
                                            one_shot: bool) -> None:
    import semsearch

    index = tmp_path / "index"
    semsearch.build([Path(__file__).resolve().parent.parent / "seeds"],
                    model=str(tiny_model)).save(index)
    seen: list[bool] = []
    real = encoder_module.load_encoder

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("one_shot", False))
        return real(*args, **kwargs)

    monkeypatch.setattr("semsearch.index.load_encoder", spy)
    questions = tmp_path / "q.txt"
    questions.write_text("\n".join(f"志愿者 {n}" for n in range(queries)), encoding="utf-8")
    result = CliRunner().invoke(cli.app, ["query", "--queries", str(questions), "--index",
                                          str(index), "--mode", "dense", "--json"])
    assert result.exit_code == 0, result.output
    assert seen == [one_shot]
