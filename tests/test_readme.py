"""Every example in README.md runs as written: each `semsearch …` line of its bash blocks (in
order, in a fresh directory holding the `docs/`, `notes.md`, `questions.txt` and BEIR set the
examples name), each `curl` against the `semsearch serve` started before it, and each Python
block. The public-set `bench` lines are run by tests/test_quality.py on the same data
(minutes each), so they are checked here only for being that same command."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from semsearch.cli import app

from .conftest import REPO, SEEDS

README = REPO / "README.md"
SETUP = {"make setup", "make test"}  # the two setup/test commands: .ci/run runs them
COVERED = {  # run elsewhere in the suite on the same data, minutes each
    "semsearch bench --dataset cmrc-trial": "tests/test_quality.py",
    "semsearch bench --dataset drcd-test": "tests/test_quality.py",
    "semsearch bench --dataset xquad-en2zh": "tests/test_quality.py",
}
runner = CliRunner()


def blocks(language: str) -> list[str]:
    """The README's fenced code blocks in `language`, in order."""
    text = README.read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def commands(block: str) -> list[list[str]]:
    """The commands of a bash block: continuation lines joined, comments dropped."""
    joined = block.replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in joined.splitlines()
            if shlex.split(line, comments=True)]


def _workdir(tmp: Path) -> None:
    """The files the examples name: a docs/ folder, a note, a query list, a BEIR set, and the
    indexes/ folder of a clone (where the examples' names are written)."""
    (tmp / "indexes").mkdir()
    docs = tmp / "docs"
    docs.mkdir()
    for name in ("000_0db68ecbc2c6cfcf.txt", "002_b3706f758604a439.txt"):
        shutil.copy(SEEDS / name, docs / name)
    (tmp / "notes.md").write_text("# 笔记\n\n- 志愿者为居民送菜上门\n- 夫妻党员一起抗疫\n",
                                  encoding="utf-8")
    (tmp / "questions.txt").write_text("夫妻党员抗疫\n志愿者送物资\n", encoding="utf-8")
    beir = tmp / "path" / "to" / "mine"
    (beir / "qrels").mkdir(parents=True)
    records = [("d1", "志愿者为居民送菜上门"), ("d2", "夫妻二人都是党员，一起抗击疫情"),
               ("d3", "热线电话昼夜有人接听")]
    (beir / "corpus.jsonl").write_text("".join(
        json.dumps({"_id": i, "title": "", "text": t}, ensure_ascii=False) + "\n"
        for i, t in records), encoding="utf-8")
    (beir / "queries.jsonl").write_text("".join(
        json.dumps({"_id": f"q{i}", "text": t}, ensure_ascii=False) + "\n"
        for i, t in enumerate(["谁给居民送菜", "夫妻党员抗疫"])), encoding="utf-8")
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq0\td1\t1\nq1\td2\t1\n",
                                            encoding="utf-8")


def _serve(args: list[str]) -> tuple[subprocess.Popen[str], int]:
    """Start `semsearch serve …` as written (on its --port, or a free one if that is taken)."""
    port = int(args[args.index("--port") + 1]) if "--port" in args else 8000
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            with socket.socket() as free:
                free.bind(("127.0.0.1", 0))
                port = free.getsockname()[1]
    args = [a for i, a in enumerate(args) if a != "--port" and args[i - 1] != "--port"]
    process = subprocess.Popen([sys.executable, "-m", "semsearch.cli", *args[1:], "--port",
                                str(port)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                if json.load(answer)["status"] == "ok":
                    return process, port
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise AssertionError(f"{shlex.join(args)} did not answer /health")


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    process.wait(timeout=30)


def test_every_readme_example_runs(real_model: Path, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _workdir(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SEMSEARCH_INDEX", raising=False)
    ran = 0
    for block in blocks("bash"):
        server: tuple[subprocess.Popen[str], int] | None = None
        try:
            for args in commands(block):
                line = shlex.join(args)
                if line in SETUP:
                    continue
                if line in COVERED:
                    assert (REPO / COVERED[line]).is_file()
                    continue
                if args[:2] == ["semsearch", "serve"]:
                    if server is not None:
                        _stop(server[0])
                    server = _serve(args)
                elif args[0] == "curl":
                    assert server is not None, f"{line}: no server started before it"
                    url = [a.replace(":8000", f":{server[1]}") for a in args]
                    done = subprocess.run(url, capture_output=True, text=True, timeout=60)
                    assert done.returncode == 0 and "error" not in json.loads(done.stdout), \
                        (line, done.stdout, done.stderr)
                else:
                    assert args[0] == "semsearch", f"README runs an unknown command: {line}"
                    result = runner.invoke(app, args[1:])
                    assert result.exit_code == 0, (line, result.output)
                ran += 1
        finally:
            if server is not None:
                _stop(server[0])
    namespace: dict[str, object] = {}
    for block in blocks("python"):
        exec(compile(block, "README.md", "exec"), namespace)
        ran += 1
    assert ran >= 25  # every block was found (a broken fence would silently skip examples)


def test_readme_setup_is_the_two_make_commands() -> None:
    first = commands(blocks("bash")[0])
    assert [shlex.join(c) for c in first] == ["make setup", "make test"]
