"""``sparsegraph compare`` end to end (in a subprocess, tiny budget), resume, and bad input."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sparsegraph.experiments.cli import main
from sparsegraph.experiments.compare.results import CSV_FIELDS, SCORES, table_columns

TABLE_COLUMNS = table_columns(SCORES["accuracy"])

# A generated ListOps small enough to train in seconds: 2 patterns, 1 seed, 4 steps.
TINY = ["--set", "data.n_train=64", "--set", "data.n_val=32", "--set", "data.n_test=32",
        "--set", "data.min_length=10", "--set", "data.max_length=40", "--set", "data.short_fraction=0",
        "--set", "model.d_model=32", "--set", "model.n_heads=2", "--set", "model.n_layers=1",
        "--set", "model.d_ff=32", "--set", "model.block_size=16",
        "--set", "train.steps=4", "--set", "train.batch_size=8", "--set", "train.eval_every=2",
        "--set", "train.log_every=2"]


def _compare(out: Path, cache: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, SPARSEGRAPH_DATA=str(cache))
    cmd = [sys.executable, "-m", "sparsegraph.experiments.cli", "compare", "--task", "listops",
           "--patterns", "full,window", "--preset", "cpu", "--seeds", "1", "--out", str(out),
           "--threads", "1", *TINY, *extra]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


def _mtimes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")
            if p.is_file() and ("checkpoints" in p.parts or p.name in ("results.json", "metrics.jsonl"))
            and p.parent != root}


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    root = tmp_path_factory.mktemp("compare")
    out, cache = root / "out", root / "cache"
    proc = _compare(out, cache)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, cache, proc


def test_compare_writes_results_table_csv_and_plots(finished) -> None:
    out, _cache, proc = finished
    doc = json.loads((out / "results.json").read_text())
    task = doc["tasks"]["listops"]
    base = task["baseline"]
    assert 0 < base["test"] <= 1 and 0 < base["val"] <= 1
    runs = task["runs"]
    assert sorted((r["label"], r["seed"]) for r in runs) == [("full", 0), ("window", 0)]
    for r in runs:
        assert r["status"] == "done"
        assert r["steps"] == 4
        for key in ("test_score", "best_dev_score", "test_at_best_dev"):
            assert 0.0 <= r[key] <= 1.0
        assert r["tokens_per_s"] > 0 and r["peak_memory_mb"] > 0 and r["wall_seconds"] > 0
        assert [s for s, _a in r["curve"]] == [2, 4]
    specs = {p["label"]: p["spec"] for p in task["patterns"]}
    assert specs["full"] == "full" and specs["window"].startswith("sliding_window:window=")
    for p in task["patterns"]:
        assert 0 < p["metrics"]["density"] <= 1
    # the CSV: one row per run, every column, numbers that parse
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert tuple(rows[0].keys()) == CSV_FIELDS
    assert len(rows) == 2
    for row in rows:
        for key in ("test_score", "best_dev_score", "test_at_best_dev", "tokens_per_s",
                    "peak_memory_mb", "wall_seconds", "baseline_test", "density"):
            float(row[key])
        assert float(row["baseline_test"]) == pytest.approx(base["test"]) and row["score"] == "accuracy"
    # the markdown table (also printed on stdout)
    md = (out / "results.md").read_text()
    header = "| " + " | ".join(TABLE_COLUMNS) + " |"
    assert header in md and header in proc.stdout
    table = [line for line in md.splitlines() if line.startswith("| full") or line.startswith("| window")]
    assert len(table) == 2
    for line in table:
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert len(cells) == len(TABLE_COLUMNS)
        float(cells[1].split("±")[0])  # test accuracy %
    assert f"majority class {100 * base['test']:.2f}% (test)" in md
    # the verdict line names every pattern once, on the side its test accuracy puts it
    above = [r["label"] for r in runs if r["test_score"] > base["test"]]
    verdict = [line for line in md.splitlines() if line.startswith("Above the majority class")]
    assert len(verdict) == 1 and f": {', '.join(above) or 'none'}" in verdict[0]
    # the figures and the speed/memory sweep
    for name in ("curves.png", "accuracy_vs_graph.png", "speed_memory.png"):
        assert (out / "plots" / name).stat().st_size > 1000
    sweep = task["sweep"]
    assert {r["label"] for r in sweep} == {"full", "window"}
    assert all(r["ms"] > 0 for r in sweep)


def test_second_invocation_does_not_retrain(finished) -> None:
    out, cache, _proc = finished
    before = _mtimes(out)
    assert any("checkpoints" in k for k in before) and any(k.endswith("results.json") for k in before)
    proc = _compare(out, cache)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("finished earlier, not retrained") == 2
    assert "training" not in proc.stderr
    assert _mtimes(out) == before


def test_interrupted_run_resumes_from_its_checkpoint(finished) -> None:
    out, cache, _proc = finished
    run = out / "listops" / "window" / "seed0"
    train_records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    n_train = sum(1 for r in train_records if r.get("split") == "train")
    (run / "results.json").unlink()  # as if killed after its last checkpoint
    proc = _compare(out, cache)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "listops window seed 0: resuming from its newest checkpoint" in proc.stderr
    assert proc.stderr.count("finished earlier, not retrained") == 1
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert sum(1 for r in records if r.get("split") == "train") == n_train  # no step trained again
    assert json.loads((run / "results.json").read_text())["steps"] == 4


def test_parallel_runs_give_the_same_results_as_sequential_ones(finished, tmp_path: Path) -> None:
    out, cache, _proc = finished
    par = tmp_path / "parallel"
    proc = _compare(par, cache, "--jobs", "2", "--no-sweep", "--no-plots")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "training 2 runs, 2 at a time, 1 torch thread(s) each" in proc.stderr
    # every line a worker printed is tagged with its run's name
    assert "listops-window-seed0: step 2: val accuracy" in proc.stderr
    assert "listops-full-seed0: step 2: val accuracy" in proc.stderr

    def runs(root: Path) -> dict:
        doc = json.loads((root / "results.json").read_text())
        return {r["label"]: (r["curve"], r["test_score"], r["best_dev_score"])
                for r in doc["tasks"]["listops"]["runs"]}

    assert runs(par) == runs(out)  # same seeds, one thread each: the same training


def test_a_changed_setting_is_not_mixed_into_an_old_comparison(finished) -> None:
    out, cache, _proc = finished
    proc = _compare(out, cache, "--set", "optim.lr=0.01")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("sparsegraph compare: error:") and "optim.lr" in lines[-1]


@pytest.mark.parametrize("argv, needle", [
    (["--task", "nosuchtask"], "nosuchtask"),
    (["--task", "listops", "--patterns", "full,no_such_pattern"], "no_such_pattern"),
    (["--task", "listops", "--preset", "gpu"], "gpu"),
    (["--task", "listops", "--patterns", "full,window=3"], "window=3"),
    (["--task", "listops", "--set", "train.stpes=3"], "train.steps"),
    (["--task", "listops", "--seeds", "0"], "--seeds"),
    (["--task", "listops,needles", "--seeds", "listops=1"], "no seed count for needles"),
    (["--task", "listops", "--seeds", "listops=1,needles=2"], "'needles' is not a task of --task"),
    (["--task", "listops", "--jobs", "0"], "--jobs"),
    (["--task", "listops", "--import", "/nonexistent/patterns_file.py"], "patterns_file.py"),
])
def test_bad_input_is_one_line_and_exit_status_2(argv: list[str], needle: str, capsys,
                                                 tmp_path: Path) -> None:
    code = main(["compare", "--out", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("sparsegraph compare: error:") and needle in err[0]
    assert not (tmp_path / "o").exists()  # nothing was started


def test_seeds_per_task() -> None:
    import doctest

    from sparsegraph.experiments.commands import compare as command
    from sparsegraph.experiments.compare import CompareOptions

    assert doctest.testmod(command).failed == 0
    seeds, per = command.parse_seeds("needles=2, listops=1", ["listops", "needles"])
    opts = CompareOptions(tasks=["listops", "needles"], entries=["full"], seeds=seeds, task_seeds=per)
    assert opts.seeds_for("needles") == [0, 1] and opts.seeds_for("listops") == [0]
    assert CompareOptions(tasks=["listops"], entries=["full"], seeds=[0, 1, 2]).seeds_for("listops") == [0, 1, 2]
    with pytest.raises(ValueError, match="named twice"):
        command.parse_seeds("listops=1,listops=2", ["listops"])


def test_baseline_verdict() -> None:
    from sparsegraph.experiments.compare.results import baseline_verdict

    rows = [{"label": "full", "test_score": 0.6}, {"label": "bigbird", "test_score": 0.518},
            {"label": "window", "test_score": None}]
    assert baseline_verdict(rows, 0.518) == (
        "Above the majority class (51.80%, test): full; not above it: bigbird.")
    assert baseline_verdict(rows[1:], 0.518) == (
        "Above the majority class (51.80%, test): none; not above it: bigbird.")
    assert baseline_verdict(rows[:1], 0.2) == "Above the majority class (20.00%, test): full."
    assert baseline_verdict(rows, None) == "" and baseline_verdict(rows[2:], 0.5) == ""
    # with the test size: a lead within 2 binomial standard errors is not "above"
    chance = [{"label": "window_only", "test_score": 0.2637}, {"label": "full", "test_score": 0.7383}]
    assert baseline_verdict(chance, 0.2559, test_count=512) == (
        "Above the majority class (25.59%, test) by more than 2 standard errors of 512 examples, "
        "3.86 points: full; not above it: window_only.")
    assert baseline_verdict(chance, 0.2559) == "Above the majority class (25.59%, test): window_only, full."


def test_coinciding_points_get_stacked_labels() -> None:
    from sparsegraph.experiments.compare.plots import _label_lifts

    # three patterns at chance with the same diameter: their labels go one above the other
    assert _label_lifts([(2, 51.8), (2, 51.8), (1, 51.8), (2.0001, 51.8)]) == [0, 1, 0, 2]
    assert _label_lifts([(1.0, 30.0), (1.5, 20.0)]) == [0, 0]
    assert _label_lifts([]) == [] and _label_lifts([(1, 1)]) == [0]


def test_compare_charlm_trains_a_decoder_on_causal_patterns(tmp_path: Path) -> None:
    # the byte-level LM as a comparison task: bits per character against the unigram baseline
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "sparsegraph.experiments.cli", "compare", "--task", "charlm",
           "--patterns", "full,sink_window:window=16,sinks=2", "--seeds", "1", "--out", str(out),
           "--threads", "1", "--no-sweep", "--no-plots",
           "--set", "data.max_bytes=60000", "--set", "data.seq_len=64", "--set", "data.eval_windows=8",
           "--set", "model.n_layers=2", "--set", "train.steps=4", "--set", "train.eval_every=2",
           "--set", "train.log_every=2", "--set", "optim.warmup_steps=1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    task = json.loads((out / "results.json").read_text())["tasks"]["charlm"]
    assert task["score"] == "bpc" and 4 < task["baseline"]["test"] < 8
    runs = {r["label"]: r for r in task["runs"]}
    assert set(runs) == {"full", "sink_window:window=16,sinks=2"}
    for r in runs.values():
        assert r["status"] == "done" and r["steps"] == 4 and 0 < r["test_score"] < 9
        assert [s for s, _v in r["curve"]] == [2, 4]
    spec = (out / "charlm" / "full" / "seed0" / "run.toml").read_text()
    assert 'spec = "causal"' in spec and 'task = "charlm"' in spec
    assert "| test bpc (mean ± std) |" in proc.stdout and "unigram baseline" in proc.stdout
    # a pattern that looks ahead is refused before training, naming its edge
    bad = subprocess.run([*cmd[:7], "full,bigbird:block=16", *cmd[8:11], str(tmp_path / "bad"), *cmd[12:]],
                         capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and "is not causal: layer 0, head 0 has the edge" in bad.stderr
