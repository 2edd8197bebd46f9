"""Every benchmark script keeps running: each runs here in --smoke mode (tiny sizes, seconds) as
a subprocess against the shipped seeds index, writing to tmp_path, and its JSON must have the
fields the README tables come from, with sane values. The numbers themselves mean nothing.

Benchmarks read indexes only through the public API (`semsearch.load`, `FaissStore.load`), so
moving or renaming a file inside an index directory either is invisible to them or fails here.

Deselect with `-m "not benchmark"` (the fast API checks at the top still run).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from semsearch.models.encoder import load_encoder
from semsearch.models.onnx import padded
from semsearch.paragraphs import split_paragraphs
from semsearch.passages import Passage
from semsearch.stores import DEFAULT_INDEX, generations
from semsearch.stores import faiss as ann
from semsearch.stores import faiss as faiss_store
from semsearch.stores.faiss import FaissStore

from .conftest import REPO

BENCHMARKS = REPO / "benchmarks"
RESULTS = BENCHMARKS / "results"
# What lives inside an index directory: benchmarks must not name any of it.
INTERNAL = (faiss_store.VECTORS, faiss_store.PASSAGES, generations.MANIFEST,
            generations.CURRENT, generations.LOCK, generations._GEN_PREFIX)


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name[:-3]}", BENCHMARKS / name)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def results_snapshot(stem: str) -> dict[str, tuple[int, int]]:
    """(mtime, size) of benchmarks/results/<stem>.*: a smoke run must leave them alone."""
    return {f.name: (f.stat().st_mtime_ns, f.stat().st_size) for f in RESULTS.glob(f"{stem}.*")}


def run_smoke(name: str, out: Path, *extra: str, timeout: float = 300,
              report: str | None = None) -> dict[str, Any]:
    """Run benchmarks/<name> --smoke --out <out>; return its JSON report (<report>.json, by
    default the script's own name)."""
    stem = name[:-3]
    before = results_snapshot(stem)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("SEMSEARCH_INDEX", None)
    result = subprocess.run([sys.executable, str(BENCHMARKS / name), "--smoke", "--out", str(out),
                             *extra], capture_output=True, text=True, env=env, cwd=REPO,
                            timeout=timeout, check=False)
    assert result.returncode == 0, (f"{name} --smoke exited {result.returncode}:\n"
                                    f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    assert results_snapshot(stem) == before, f"{name} --smoke wrote to {RESULTS}"
    written = report or stem
    found = json.loads((out / f"{written}.json").read_text(encoding="utf-8"))
    assert (out / f"{written}.md").read_text(encoding="utf-8").strip()
    return found


def positive(*values: float) -> bool:
    return all(isinstance(v, int | float) and v > 0 and np.isfinite(v) for v in values)


def fraction(*values: float) -> bool:
    return all(isinstance(v, int | float) and 0.0 <= v <= 1.0 for v in values)


# --- fast: what the benchmarks read from the shipped index, through the API -------------------


@pytest.mark.parametrize("name", sorted(p.name for p in BENCHMARKS.glob("*.py")))
def test_benchmarks_name_no_file_inside_an_index(name: str) -> None:
    source = (BENCHMARKS / name).read_text(encoding="utf-8")
    for internal in INTERNAL:
        pattern = re.escape(internal) + (r"\d" if internal.endswith("-") else r"\b")
        assert not re.search(pattern, source), (
            f"benchmarks/{name} names {internal!r}, a file inside an index directory: open "
            "indexes with semsearch.load / FaissStore.load instead")
    assert not re.search(r"""["']indexes["']""", source), (
        f"benchmarks/{name} builds a path under indexes/: use semsearch.search.DEFAULT_INDEX")


def test_ann_reads_the_seed_vectors_through_the_api() -> None:
    store = FaissStore.load(DEFAULT_INDEX)
    seeds = load_script("ann.py").load_seeds(DEFAULT_INDEX)
    assert seeds.shape == (len(store.passages), store.manifest.model.dimension) == (62, 384)
    assert seeds.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(seeds, axis=1), 1.0, atol=1e-4)
    scores, ids = store.search(seeds[:5], 1)
    assert ids[:, 0].tolist() == sorted(store.passages)[:5]
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-4)


# --- each script in --smoke mode --------------------------------------------------------------


def test_documents_counts_a_line_cut_between_two_passages_on_its_page() -> None:
    """A table row cut between two passages of its page is on its page (issue-67-example.pdf's
    3 'wrong pages' were such rows, the same figures whole in a passage of another page)."""
    from semsearch.passages import Passage

    documents = load_script("documents.py")
    row = "其他应收款 18,267,606.14 3,123,072.43"
    pages = [f"上期收回大额{row} 484.92%", f"资产负债表\n{row}\n合计"]
    passages = [Passage(f"上期收回大额{row} 484.92%", "r.pdf", 1, 0, 1,
                        metadata={"page_start": 1, "page_end": 1}),
                Passage(f"资产负债表{row[:16]}", "r.pdf", 2, 1, 2,
                        metadata={"page_start": 2, "page_end": 2}),
                Passage(f"{row[16:]}合计", "r.pdf", 3, 2, 3,
                        metadata={"page_start": 2, "page_end": 2})]
    assert documents.pages_right(pages, passages) == (2, 2)


def test_public_chinese_pdfs_are_listed_with_source_license_and_checksum(
        tmp_path: Path) -> None:
    office = load_script("office.py")
    entries = json.loads(office.PUBLIC.read_text(encoding="utf-8"))["files"]
    assert len(entries) >= 5 and {e["kind"] for e in entries} == {"prose", "items"}
    for entry in entries:
        assert entry["license"] and re.fullmatch(r"[0-9a-f]{64}", entry["sha256"]), entry
        assert entry["source"].split(":")[0] in ("github", "debian"), entry
        assert entry["source"].startswith("debian:") or len(entry["commit"]) == 40, entry
    with pytest.raises(SystemExit, match=r"office\.py collect"):
        office.public_pdfs(tmp_path)


@pytest.mark.benchmark
def test_ann_smoke(tmp_path: Path) -> None:
    report = run_smoke("ann.py", tmp_path)
    assert (tmp_path / "ann.png").stat().st_size > 0
    assert report["dim"] == 384 and report["k"] == 10 and positive(report["total_s"])
    assert report["threads"] == 1 and report["queries"] == 50
    assert set(report["seeds_62"]) == {"pair_cosine_p5_p50_p95", "nn_cosine_p5_p50_p95"}
    [size] = report["sizes"]
    assert size["n"] == 1000 and size["queries"] == 50
    assert list(size["types"]) == list(ann.INDEX_TYPES)
    for kind, row in size["types"].items():
        assert row["build_s"] >= 0 and row["disk_mb"] >= 0, kind
        assert positive(row["p50_ms"], row["p99_ms"], row["batch_ms_per_query"]), kind
        assert row["p99_ms"] >= row["p50_ms"], kind
        assert 0 < row["single_queries"] <= 50
        assert fraction(row["recall_at_10"]), kind
        assert positive(row["speedup_p50_vs_flat"], row["speedup_batch_vs_flat"]), kind
        assert row["description"].startswith(kind), kind
        for rss in (row["rss"], row["rss_mmap"]):
            assert set(rss) == {"rss_mb", "anon_mb", "rss_after_200_queries_mb",
                                "anon_after_200_queries_mb"}
        sweep_key = {"flat": None, "hnsw": "ef_search"}.get(kind, "nprobe")
        assert bool(row["sweep"]) == (sweep_key is not None), kind
        for point in row["sweep"]:
            assert point[sweep_key] > 0
            assert fraction(point["recall_at_10"])
            assert positive(point["p50_ms"], point["p99_ms"], point["batch_ms_per_query"])
    assert size["types"]["flat"]["recall_at_10"] == 1.0  # flat is the ground truth
    assert size["types"]["hnsw"]["p50_ms_without_selector"] > 0


@pytest.mark.benchmark
def test_ann_fails_loudly_when_an_index_file_moves(tmp_path: Path) -> None:
    """The seeds' vectors are read through FaissStore.load: a moved file is an IndexLoadError,
    never a benchmark of something else."""
    copy = tmp_path / "seeds"
    shutil.copytree(DEFAULT_INDEX, copy)
    live = generations.live_dir(copy)
    (live / faiss_store.VECTORS).rename(live / "moved.faiss")
    result = subprocess.run([sys.executable, str(BENCHMARKS / "ann.py"), "--smoke", "--index",
                             str(copy), "--out", str(tmp_path / "out")], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode != 0
    assert "IndexLoadError" in result.stderr and faiss_store.VECTORS in result.stderr
    assert not (tmp_path / "out" / "ann.json").exists()


@pytest.mark.benchmark
@pytest.mark.slow
def test_encoders_smoke(tmp_path: Path, real_model: Path) -> None:
    report = run_smoke("encoders.py", tmp_path)
    assert (tmp_path / "encoders.png").stat().st_size > 0
    assert report["passages"] == 8 and report["cli_runs"] == 1
    throughput = report["throughput"]
    assert list(throughput) == ["sentence-transformers encode (baseline)", "semsearch torch",
                                "semsearch onnx", "semsearch onnx-int8"]
    for name, run in throughput.items():
        assert positive(run["seconds"], run["passages_per_s"], run["speedup"]), name
        assert 0.9 < run["cosine_min"] <= 1.0 + 1e-5, name  # int8 is ~0.98
    assert throughput["semsearch onnx"]["cosine_min"] > 0.999
    assert set(report["cold_cli"]) == {"sentence-transformers (baseline)", "onnx"}
    for name, run in report["cold_cli"].items():
        assert positive(run["median_s"], run["speedup"]) and len(run["runs_s"]) == 1, name
        assert len(run["top5"]) == 5, name
    assert report["top5"]["queries"] == 8
    assert all(0 <= n <= 8 for n in report["top5"]["identical_top5"].values())
    assert set(report["quality"]) == {"onnx"}  # all three backends in a full run
    for backend, metrics in report["quality"].items():
        assert len(metrics) == 6 and fraction(*metrics.values()), backend


@pytest.mark.benchmark
@pytest.mark.slow
def test_milvus_smoke(tmp_path: Path, real_model: Path) -> None:
    pytest.importorskip("milvus_lite")
    report = run_smoke("milvus.py", tmp_path)
    assert report["repeat"] == 1 and report["pymilvus"] and report["milvus_lite"]
    seeds = report["seeds"]
    assert seeds["passages"] == len(FaissStore.load(DEFAULT_INDEX).passages)
    assert seeds["queries"] == 8
    assert positive(seeds["migrate_s"], seeds["migrate_passages_per_s"])

    def agreement(a: dict[str, Any]) -> None:
        assert a["queries"] == 8 and 0 <= a["identical_top5"] <= 8
        assert fraction(a["overlap_at_5"])

    def latency(lat: dict[str, float]) -> None:
        assert positive(lat["p50_ms"], lat["p99_ms"], lat["mean_ms"])
        assert lat["p99_ms"] >= lat["p50_ms"]

    for path in ("dense", "hybrid"):
        latency(seeds[path]["faiss"])
        latency(seeds[path]["milvus_lite"])
        agreement(seeds[path]["agreement"])
    assert seeds["dense"]["agreement"]["overlap_at_5"] >= 0.8  # both exact: nearly identical
    for path in ("hybrid_server_weighted", "hybrid_server_rrf"):
        latency(seeds[path]["milvus_lite"])
        agreement(seeds[path]["agreement_with_faiss_hybrid"])
    agreement(seeds["bm25_agreement"])
    large = report["large"]
    assert large["passages"] == 1000
    assert positive(large["migrate_s"], large["migrate_passages_per_s"])
    dense = large["dense_top10"]
    latency(dense["faiss_flat"])
    latency(dense["milvus_lite_flat"])
    assert dense["queries"] == 8 and 0 <= dense["identical_top10"] <= 8


@pytest.mark.benchmark
@pytest.mark.slow
def test_service_smoke(tmp_path: Path, real_model: Path) -> None:
    report = run_smoke("service.py", tmp_path, timeout=180)
    assert report["cpus"] >= 1 and report["baseline"] is None
    encoding = report["query_encoding"]
    assert positive(encoding["warm_tokenizer_p50_ms"], encoding["cold_tokenizer_p50_ms"])
    runs = report["by_index"]["seeds"]["workloads"]["hybrid"]
    assert list(runs) == ["batched"] and [run["clients"] for run in runs["batched"]] == [1, 4]
    for run in runs["batched"]:
        assert run["errors"] == 0 and 0 < run["requests"] <= 20
        assert positive(run["seconds"], run["requests_per_s"], run["p50_ms"], run["p99_ms"])
        assert run["p99_ms"] >= run["p50_ms"]
        assert positive(run["server_cpu_ms"], run["client_cpu_ms"])  # CPU per request
    assert "stream(s) of 1 thread" in report["cpu"]
    assert (tmp_path / "service.png").is_file()


@pytest.mark.benchmark
@pytest.mark.slow
def test_throughput_smoke(tmp_path: Path) -> None:
    report = run_smoke("throughput.py", tmp_path, "--variants", "fp32-tok2048")
    assert report["smoke"] is True
    variants = report["throughput"]["variants"]
    assert {"fp32", "fp32-tok2048"} <= set(variants)
    for measured in variants.values():
        assert positive(measured["passages_per_s"], measured["tokens_per_s"])
    assert fraction(*report["min_cosine"].values())
    assert report["min_cosine"]["fp32-tok2048"] > 0.999


@pytest.mark.benchmark
@pytest.mark.slow
def test_throughput_quality_path_runs(tmp_path: Path) -> None:
    """The retrieval-quality part (skipped by a plain smoke run) crashed after the restructure
    moved `load_encoder` out of search.py; run it on the seeds for the shipped int8 body and
    the indexing default."""
    report = run_smoke("throughput.py", tmp_path, "--variants", "int8-checked,default",
                       "--quality", "seeds")
    seeds = report["quality"]["seeds"]
    assert set(seeds) == {"fp32", "int8-checked", "default"}
    for row in seeds.values():
        for mode in ("dense", "hybrid"):
            assert fraction(row["metrics"][mode]["recall@5"], row["metrics"][mode]["mrr@10"])
    assert seeds["fp32"]["within_tolerance"] and seeds["int8-checked"]["min_cosine"] > 0.99


@pytest.mark.benchmark
@pytest.mark.slow
def test_fuzz_service_smoke(tmp_path: Path) -> None:
    report = run_smoke("fuzz_service.py", tmp_path, timeout=300)
    assert report["requests"] == 200 and report["server_errors"] == 0
    assert report["transport_errors"] == 0
    assert positive(report["longest_request_s"]) and report["longest_request_s"] < 10


@pytest.mark.benchmark
@pytest.mark.slow
def test_memory_smoke(tmp_path: Path) -> None:
    report = run_smoke("memory.py", tmp_path)
    assert report["smoke"] is True
    real, stub = report["runs"]
    assert (real["encoder"], stub["encoder"]) == ("real", "stub")
    for run in report["runs"]:
        assert run["passages"] >= run["records"] > 0
        steps = list(run["steps_mb"].values())
        assert steps == sorted(steps) and run["peak_rss_mb"] >= steps[-1] > 0  # peaks only grow
    assert (tmp_path / "memory.md").read_text(encoding="utf-8").count("|") > 10


@pytest.mark.benchmark
def test_memory_sentences_smoke(tmp_path: Path) -> None:
    """`--granularity sentence` (issue 35): the stub encodes the sentences too, and the rows say
    how many sentence vectors were added and what the index takes on disk."""
    report = run_smoke("memory.py", tmp_path, "--granularity", "sentence", "--real-records", "0",
                       report="memory-sentences")
    assert report["granularity"] == "sentence"
    (run,) = report["runs"]
    assert run["encoder"] == "stub" and run["sentence_vectors"] > run["passages"] > 0
    steps = list(run["steps_mb"].values())
    assert "sentence vectors added" in run["steps_mb"] and steps == sorted(steps)
    assert run["peak_rss_mb"] >= steps[-1] > 0 and run["disk_mb"] > 0
    assert "| sentence vectors |" in (tmp_path / "memory-sentences.md").read_text("utf-8")


@pytest.mark.benchmark
@pytest.mark.slow
def test_indexing_smoke(tmp_path: Path) -> None:
    report = run_smoke("indexing.py", tmp_path)
    assert report["smoke"] is True and report["corpus"]["records"] == 300
    encoders = report["throughput"]["encoders"]
    assert next(iter(encoders)) == "sentence-transformers"
    assert encoders["sentence-transformers"]["x_sentence_transformers"] == 1.0
    for row in encoders.values():
        assert positive(row["tokens_per_s"], row["passages_per_s"], row["gflops"])
    index, resume = report["index"], report["resume"]
    assert index["passages"] >= 300 and positive(index["peak_rss_mb"], index["disk_mb"])
    assert resume["was_killed"] and resume["resumed"] > 0
    assert resume["same"] == {"passages": True, "vectors_bit_for_bit": True,
                              "bm25_answers": True}
    for mode in ("dense", "bm25", "hybrid"):
        assert report["latency"][mode]["p99_ms"] >= report["latency"][mode]["p50_ms"] > 0
    assert (tmp_path / "indexing.png").stat().st_size > 0


@pytest.mark.benchmark
def test_documents_smoke(tmp_path: Path) -> None:
    """The real-documents benchmark on the shipped subset: every character the libraries
    extract is embedded, pages right, no markup or junk passages, Word parts kept."""
    report = run_smoke("documents.py", tmp_path, timeout=120)
    summary = report["summary"]
    assert set(summary) == {"pdf", "docx", "html", "pdf-zh", "cases"}
    for kind in ("pdf", "docx", "html"):
        row = summary[kind]
        assert row["refused"] == 0 and row["kept_min"] >= 0.98, (kind, row)
        assert row["markup_passages"] == 0 and row["junk_passages"] == 0, (kind, row)
    assert summary["pdf"]["pages_right"] == summary["pdf"]["page_lines"] > 0
    assert summary["html"]["snippets_found"] == summary["html"]["snippets"] == 6
    parts = {row["file"]: row["parts"] for row in report["files"] if "parts" in row}
    assert parts["hdr-header-footer.docx"] == ["body", "footer", "header"]
    assert parts["comments-rich-para.docx"] == ["body", "comment"]
    # the documents of a Chinese office (issue 37): Chinese PDFs read as paragraphs, cut at
    # sentence ends, and every Word/HTML case yields all its text
    zh = summary["pdf-zh"]
    assert zh["mean_chars"] >= 150 and zh["inside_word"] <= 0.05 * zh["boundaries"], zh
    assert zh["pages_right"] == zh["page_lines"] > 0, zh
    assert summary["cases"]["found"] == summary["cases"]["wanted"] == 10, summary["cases"]


@pytest.mark.benchmark
def test_cold_query_smoke(tmp_path: Path) -> None:
    report = run_smoke("cold_query.py", tmp_path)
    commands = report["commands"]
    reference = load_script("cold_query.py").REFERENCE
    assert commands[reference]["x_reference"] == 1.0
    assert any("(table)" in name for name in commands) and any("--json" in n for n in commands)
    for name, row in commands.items():
        assert positive(row["median_s"], row["x_reference"]), name
        assert len(row["runs_s"]) == 1, name


@pytest.mark.benchmark
def test_reproducibility_smoke(tmp_path: Path) -> None:
    report = run_smoke("reproducibility.py", tmp_path, timeout=600)
    [(name, result)] = report["sets"].items()
    assert name == "cmrc-trial" and result["queries"] > 0
    assert len(result["builds"]) == 2
    for counts in result["builds"].values():
        for mode in ("dense", "bm25", "hybrid"):
            assert 0 <= counts[mode]["hits@1"] <= counts[mode]["hits@5"] \
                <= counts[mode]["hits@10"] <= result["queries"], (mode, counts)
    assert report["largest_spread"] == max(result["spread"].values()) >= 0


@pytest.mark.benchmark
@pytest.mark.slow
def test_abuse_smoke(tmp_path: Path) -> None:
    report = run_smoke("abuse.py", tmp_path)
    assert report["alive_after"] and report["baseline"]["requests"] > 0
    assert set(report["attacks"]) and all(fraction(a["ok_share"])
                                          for a in report["attacks"].values())
    assert report["slow_clients"]["closed_by_server"] == report["slow_clients"]["connections"]
    assert all(r["trials"] == 2 for r in report["files"].values())


@pytest.mark.benchmark
def test_filters_smoke(tmp_path: Path) -> None:
    report = run_smoke("filters.py", tmp_path)
    assert report["passages"] == 2_000 and report["repeats"] == 2
    assert len(report["shapes"]) >= 10 and "CPUs" in report["machine"]
    for shape in report["shapes"]:
        assert positive(shape["old_ms"], shape["new_ms"], shape["search_ms"], shape["speedup"])
        assert 0 <= shape["cpu_ms"] <= shape["cpu_p95_ms"] <= shape["cpu_max_ms"]
        assert 0 <= shape["kept_median"] <= report["passages"]


@pytest.mark.benchmark
@pytest.mark.slow
def test_abuse_scale_smoke(tmp_path: Path) -> None:
    report = run_smoke("abuse.py", tmp_path, "--scale")["scale"]
    assert report["alive_after"] and report["new_filter_attack"]["requests"] > 0
    assert len(report["together"]["rounds"]) == 2 and report["heavy_in_batch"]["ratio"] > 0
    assert report["loading"]["private copy, mapped"]["load_s"] >= 0


@pytest.mark.benchmark
@pytest.mark.slow
def test_abuse_truncations_smoke(tmp_path: Path) -> None:
    report = run_smoke("abuse.py", tmp_path, "--truncations")["truncations"]
    assert report["mapped"] and report["alive_after"]  # the smoke's limit is lowered to 1 MiB
    assert report["files"]["trials"] == 2 == report["files"]["passed"]
    assert (tmp_path / "abuse.md").read_text(encoding="utf-8").count("## Truncating") == 1


def test_runtimes_leave_out_only_the_absent_runtimes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without OpenVINO, NNCF and CTranslate2 installed, benchmarks/runtimes.py still measures
    the baseline, the fp32 reference and the default, and names the rows it left out."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # its imports of the scripts beside it
    script = load_script("runtimes.py")
    optional = {r.package for r in script.RUNTIMES if r.package}
    assert optional == {"openvino", "nncf", "ctranslate2"}
    real_find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in optional else real_find(name, *a))
    chosen, absent = script.select(None)
    assert [r.name for r in chosen] == [script.BASELINE, script.REFERENCE, script.DEFAULT]
    assert set(absent) == {r.name for r in script.RUNTIMES if r.package}
    chosen, absent = script.select(["ctranslate2 int8"])
    assert len(chosen) == 3 and absent == ["ctranslate2 int8"]


@pytest.mark.benchmark
@pytest.mark.slow
def test_runtimes_query_path_smoke(tmp_path: Path) -> None:
    """--query: every query path gets a latency, batch throughputs and a cosine to fp32, and the
    floor (fp32 weight products alone, fewer operations than the encoder) is timed beside them; the
    service's bf16 path, where it runs, keeps a query's vector in a batch and embeds batches of
    32 faster than fp32; the opt-in int8 path answers one query faster than fp32."""
    report = run_smoke("runtimes.py", tmp_path, "--query", timeout=600, report="query_path")
    fp32, bf16 = "onnxruntime fp32", "bf16 fixed widths, OpenVINO (service)"
    int8 = "int8 weights, OpenVINO"
    assert report["latency"][fp32]["x_before"] == 1.0
    for name, row in report["latency"].items():
        assert positive(row["p50_ms"], row["p90_ms"], *report["throughput"][name].values()), name
        assert report["cosine"][name]["min"] > 0.99, name
    if bf16 in report["latency"]:
        assert report["batch_drift"][bf16] == 0.0
        assert report["cosine"][bf16]["min"] > 0.9999
        assert (report["throughput"][bf16]["batch_32_qps"]
                > report["throughput"][fp32]["batch_32_qps"])
    if int8 in report["latency"]:
        assert report["batch_drift"][int8] == 0.0
        assert report["cosine"][int8]["min"] > 0.9995
        assert report["latency"][int8]["p50_ms"] < report["latency"][fp32]["p50_ms"]
    floor = report["floor"]  # fp32's weight products alone: part of fp32's work
    assert positive(floor["p50_ms"], floor["p90_ms"], floor["best_ms"])
    assert 0 < report["floor_mflop"] < report["mflop"]


@pytest.mark.benchmark
@pytest.mark.slow
def test_runtimes_smoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every runtime whose package is installed gets a row with sane numbers; an absent one
    is named in "absent" instead (the optional runtimes are not `make setup` dependencies)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    script = load_script("runtimes.py")
    report = run_smoke("runtimes.py", tmp_path, timeout=600)
    rows = report["throughput"]
    for runtime in script.RUNTIMES:
        present = script.installed(runtime.package)
        assert (runtime.name in rows) == present and (runtime.name in report["absent"]) != present
    assert rows[script.BASELINE]["x_sentence_transformers"] == 1.0
    assert rows[script.DEFAULT]["x_default"] == 1.0
    for name, row in rows.items():
        assert positive(row["tokens_per_s"], row["gflops"], row["pct_of_gemm_peak"]), name
        assert report["min_cosine_sample"][name] > 0.98, name
    assert report["min_cosine_sample"][script.REFERENCE] > 0.99999
    assert positive(*report["profile"][script.INT8_BODY].values())
    assert report["peak"]["gemm_fp32_gflops"] > 0


@pytest.mark.benchmark
def test_index_e2e_smoke(tmp_path: Path) -> None:
    """`semsearch index` end to end against SentenceTransformer.encode: both sides timed in
    fresh processes, every granularity asked, and what each side encodes counted."""
    report = run_smoke("index_e2e.py", tmp_path, timeout=600)
    assert report["smoke"] is True and report["paragraphs"] == 12
    row = report["sets"]["cmrc-trial"]
    assert positive(*row["st_encode"]) and row["st_with_load"][0] > row["st_encode"][0]
    assert {label.split()[3] for label in row["index"]} == {"passage", "sentence"}
    for timed in row["index"].values():
        assert positive(*timed["seconds"], timed["x_st_encode"])
    tokens = row["tokens"]
    assert positive(tokens["baseline"], tokens["passages"], tokens["sentences"])


@pytest.mark.benchmark
@pytest.mark.slow
def test_late_chunking_smoke(tmp_path: Path) -> None:
    """The late-chunking experiment (paragraphs.py, tried and left out) still runs: every
    recipe scored on the same questions, late chunking reading fewer tokens than the blend."""
    report = run_smoke("late_chunking.py", tmp_path, timeout=600)
    found = report["sets"]["cmrc-trial"]
    assert set(found["runs"]) == {"no blend", "blend", "late+blend", "late", "late+blend ctx",
                                  "late ctx"}
    for modes in found["runs"].values():
        assert 0 < modes["hybrid"]["hits@5"] <= found["queries"]
        assert fraction(modes["dense"]["mrr@10"], modes["hybrid"]["mrr@10"])
    assert found["cut_paragraphs"] > 0
    assert 0 < found["tokens_late"] < found["tokens_blend"]
    assert fraction(found["cos_late_to_paragraph"], found["cos_alone_to_paragraph"])


@pytest.mark.benchmark
def test_sentence_fusion_variants_change_only_what_they_name(tiny_model: Path) -> None:
    """benchmarks/sentences.py --fusion: the neutral variant answers as the library does, each
    hook does what it says (dense weight 1: hybrid is the dense order; sentence BM25 share 0:
    BM25 is the passage ranking), and everything patched is put back."""
    from semsearch import search
    from semsearch.index import Index
    from semsearch.stores import sentences

    from .conftest import SEEDS

    script = load_script("sentences.py")
    index = Index.build([SEEDS], str(tiny_model), granularity="sentence")
    store = index.store
    queries = ["夫妻党员抗疫", "志愿者配送物资", "who donated 150,000 yuan"]

    def ids(mode: str) -> list[list[int]]:
        return [[h.id for h in hits] for hits in index.search_batch(queries, k=3, mode=mode)]

    before = {mode: ids(mode) for mode in ("dense", "hybrid")}
    lexical = store.lexical_search(queries, 10)  # type: ignore[attr-defined]
    patched = script._Patched(store, script.sentence_lexical(store))
    units, pids = patched.sentence_lexical
    assert units.size == len(pids) >= len(store.sentences)  # type: ignore[attr-defined]
    with patched.variant():
        assert ids("hybrid") == before["hybrid"]
    with patched.variant(dense_weight=1.0):
        assert ids("hybrid") == before["dense"]
    with patched.variant(sentence_bm25=1.0):
        got = store.lexical_search(queries, 10)  # type: ignore[attr-defined]
        np.testing.assert_array_equal(got[1], lexical[1])
    with patched.variant(mix=0.3):
        assert sentences.SENTENCE_MIX == 0.3
    assert sentences.SENTENCE_MIX == script.DEFAULT_MIX
    assert search.weighted_fusion.__module__ == "semsearch.fusion"
    assert search.fusion_weights.__module__ == "semsearch.fusion"
    assert "sentence_search" not in vars(store) and "lexical_search" not in vars(store)
    assert {mode: ids(mode) for mode in ("dense", "hybrid")} == before


def test_members_know_their_place_in_the_paragraph_text() -> None:
    """Late chunking (benchmarks/late_chunking.py) pools each member's own characters out of
    the paragraph's text: the spans must cut exactly the member's text, heading or not."""
    passages = [Passage("一二。", "a", 1, 0, 3, "题"), Passage("三四五。", "a", 1, 3, 7, "题"),
                Passage("x", "b", 1, 0, 1), Passage("yz", "b", 1, 1, 3)]
    script = load_script("late_chunking.py")
    found = split_paragraphs(passages)
    for paragraph in found:
        assert [paragraph.text[s:e] for s, e in script.member_spans(paragraph, passages)] == \
            [passages[m].text for m in paragraph.members]
    assert script.member_spans(found[0], passages) == ((2, 5), (6, 10))


def test_token_spans_take_the_tokens_ending_in_each_member() -> None:
    """Offsets as `tokenizers` gives them for "passage: 题\\n北京。 上海。" (a "▁" piece
    carrying the space between two members belongs to neither; specials are empty)."""
    offsets = [(0, 0), (0, 7), (7, 8), (8, 9), (9, 10), (10, 11), (11, 13), (13, 14),
               (14, 15), (15, 17), (17, 18), (0, 0)]
    token_spans = load_script("late_chunking.py").token_spans
    # the text after the 9-character prompt: "题\n北京。 上海。", members at 2-5 and 6-9
    assert token_spans(offsets, [(2, 5), (6, 9)], shift=9) == [(6, 8), (9, 11)]
    # the model read only up to "北京" (truncated): the first member is cut, both fall back
    assert token_spans([*offsets[:7], (0, 0)], [(2, 5), (6, 9)], shift=9) == [None, None]


def test_embed_spans_pools_each_span_of_the_one_pass() -> None:
    """A fake body whose hidden states are its input embeddings: each span's vector is the
    normalised mean of exactly its tokens' rows, and the row's own vector comes first."""
    from semsearch.models.onnx import OnnxRunner

    class Identity:
        calls = 0

        def run(self, _outputs: object, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
            Identity.calls += 1
            return [feeds["inputs_embeds"]]

    table = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    runner = OnnxRunner(Path("."), table, Identity(), max_tokens=16, pad_id=1)
    ids = [[0, 5, 6, 7, 8, 2], [0, 9, 2]]
    got = load_script("late_chunking.py").embed_spans(runner, ids,
                                                       [[[(1, 3)], [(3, 5), (0, 1)]], []])
    assert Identity.calls == 1 and got.shape == (4, 4)

    def unit(rows: list[int]) -> np.ndarray:
        mean = table[rows].mean(axis=0)
        return mean / np.linalg.norm(mean)

    np.testing.assert_allclose(got[0], unit(ids[0]), atol=1e-6)
    np.testing.assert_allclose(got[1], unit([5, 6]), atol=1e-6)
    np.testing.assert_allclose(got[2], unit([7, 8, 0]), atol=1e-6)
    np.testing.assert_allclose(got[3], unit(ids[1]), atol=1e-6)
    np.testing.assert_allclose(got[[0, 3]], runner.embed_ids(ids), atol=1e-6)


def test_encode_late_reads_a_paragraph_once_and_pools_its_members(tiny_model: Path) -> None:
    """Through the ONNX encoder (tiny model, 128 tokens): one body run for the paragraph;
    its vector is the paragraph's own; each member's is the mean of its own tokens' states;
    a member past the window comes back all zero (it falls back to being encoded alone)."""
    encoder = load_encoder(str(tiny_model), "onnx")
    runner = encoder.runner
    passages = [Passage("一二三四五。", "a", 1, 0, 6, "题"),
                Passage("六七八九十。", "a", 1, 6, 12, "题"),
                Passage("天" * 200 + "。", "a", 1, 12, 213, "题")]
    script = load_script("late_chunking.py")
    (paragraph,) = split_paragraphs(passages)
    spans = script.member_spans(paragraph, passages)
    runs = []
    real_run = runner.session.run
    runner.session.run = lambda outputs, feeds: runs.append(1) or real_run(outputs, feeds)
    (got,) = script.encode_late(encoder, [paragraph.text], [spans])
    runner.session.run = real_run
    assert len(runs) == 1 and got.shape == (4, encoder.info.dimension)
    np.testing.assert_allclose(got[0], encoder.encode_passages([paragraph.text])[0], atol=1e-5)
    ids = runner.ids(["passage: " + paragraph.text])
    batch, mask = padded(ids, runner.pad_id)
    (hidden,) = runner.session.run(None, {"inputs_embeds": runner.table[batch].astype(np.float32),
                                          "attention_mask": mask})
    hidden = hidden[0]
    encoding = runner.tokenizer.encode("passage: " + paragraph.text)
    for row, (start, end) in enumerate(spans[:2], 1):
        tokens = [n for n, (s, e) in enumerate(encoding.offsets)
                  if e > s and start + 9 <= e - 1 < end + 9]
        mean = hidden[tokens].mean(axis=0)
        np.testing.assert_allclose(got[row], mean / np.linalg.norm(mean), atol=1e-5)
    assert not np.any(got[3])
