"""Gathering a comparison's runs: per-run records, per-pattern summaries, and the files.

Per run (one pattern, one seed), from the trainer's :class:`~sparsegraph.experiments.train.result.RunResult`
(``results.json``) and ``metrics.jsonl``:

- ``test_score``: the task's score on the test split with the final weights (its :class:`Score`:
  accuracy for classification, bits per character for the character LM);
- ``best_dev_score`` / ``best_dev_step``: the best validation score over the evaluations;
- ``test_at_best_dev``: the test score of the checkpoint with the best validation score;
- ``tokens_per_s``: real (unpadded) input tokens per second of training;
- ``peak_memory_mb``: the training process's peak resident set (MiB; includes the interpreter,
  torch and the data, so compare patterns by differences);
- ``train_seconds`` (optimizer steps only) and ``wall_seconds`` (the whole run process, summed
  over resumed segments);
- ``curve``: ``[step, validation score]`` at every evaluation;
- ``pretrain_steps`` / ``pretrain_mlm_loss``: for a self-pretrained run (``--set
  pretrain.steps=N``, :mod:`sparsegraph.experiments.lra.self_pretrain`), its masked-LM updates and
  the MLM loss on the validation inputs after the last of them (0 and None otherwise).

Per pattern: the mean and sample standard deviation (``n - 1``) over seeds of the accuracies and
the means of the rest. Files: ``results.json`` (everything), ``results.csv`` (one row per run),
``results.md`` (one table per task, also printed). :func:`read_all` reads ``results.json`` back,
so the tables can be printed again from the stored numbers alone (``docs/make_results.py``).
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

from sparsegraph.experiments.compare import correlation as corr
from sparsegraph.experiments.compare.graphs import GRAPH_METRICS
from sparsegraph.experiments.train.result import RESULTS_FILE, RunResult

__all__ = ["Score", "SCORES", "RunRecord", "TaskResults", "StoredResults", "read_run", "summarise",
           "markdown_table", "report", "REPORT_NOTE", "write_all", "read_all", "CSV_FIELDS"]


@dataclass(frozen=True)
class Score:
    """What a task's runs are ranked by: the trainer's metric ``key``, how it is shown, which way
    is better, and what its baseline is called."""

    key: str
    title: str
    percent: bool
    higher_is_better: bool
    baseline: str

    def format(self, x: float | None, std: float | None = None) -> str:
        if x is None:
            return "–"
        k = 100 if self.percent else 1
        d = 2 if self.percent else 3
        return f"{k * x:.{d}f}" + (f" ± {k * std:.{d}f}" if std is not None else "")

    def beats(self, x: float, base: float) -> bool:
        return x > base if self.higher_is_better else x < base


#: The scores of the task kinds: classification accuracy (against the majority class) and the
#: character LM's bits per character (against the unigram entropy of the training bytes).
SCORES = {"accuracy": Score("accuracy", "acc %", True, True, "majority class"),
          "bpc": Score("bpc", "bpc", False, False, "unigram baseline")}


@dataclass
class RunRecord:
    """One (pattern, seed) run; ``status`` is ``done``, ``failed`` or ``missing``."""

    task: str
    label: str
    spec: str
    seed: int
    status: str
    error: str = ""
    steps: int | None = None
    test_score: float | None = None
    best_dev_score: float | None = None
    best_dev_step: int | None = None
    test_at_best_dev: float | None = None
    tokens_per_s: float | None = None
    peak_memory_mb: float | None = None
    train_seconds: float | None = None
    wall_seconds: float | None = None
    parameters: int | None = None
    curve: list[list[float]] = field(default_factory=list)
    train_curve: list[list[float]] = field(default_factory=list)
    pretrain_steps: int = 0
    pretrain_mlm_loss: float | None = None
    #: examples the test score is over (the trainer's ``count``), for the baseline's margin
    test_count: int | None = None


@dataclass
class TaskResults:
    """Everything about one task of a comparison."""

    task: str
    preset: str
    config: dict[str, Any]
    length: int
    seq_len: int
    data: str
    baseline: dict[str, float]
    patterns: list[dict[str, Any]]
    runs: list[RunRecord]
    sweep: list[dict[str, Any]] = field(default_factory=list)
    score: str = "accuracy"
    #: the correlations as ``results.json`` stored them; None = compute them from the runs
    stored_correlations: list[corr.Correlation] | None = None

    @property
    def scoring(self) -> "Score":
        return SCORES[self.score]

    @classmethod
    def from_dict(cls, task: str, d: dict[str, Any]) -> "TaskResults":
        """The task ``task`` as ``results.json`` stores it under ``tasks`` (see
        :func:`write_all`): the inverse of what that writes, infinities included."""
        if not isinstance(d, dict):
            raise ValueError(f"task {task!r}: expected a mapping, got {type(d).__name__}")
        missing = [k for k in ("preset", "length", "seq_len", "data", "baseline", "patterns", "runs")
                   if k not in d]
        if missing:
            raise ValueError(f"task {task!r}: missing {', '.join(missing)}")
        score = d.get("score", "accuracy")
        if score not in SCORES:
            raise ValueError(f"task {task!r}: score {score!r}; expected one of {', '.join(SCORES)}")
        record_fields = {f.name for f in fields(RunRecord)}
        corr_fields = {f.name for f in fields(corr.Correlation)}
        stored = d.get("correlations")
        return cls(
            task=task, preset=d["preset"], config=d.get("config", {}), length=int(d["length"]),
            seq_len=int(d["seq_len"]), data=d["data"], baseline=_json_restore(d["baseline"]),
            patterns=_json_restore(d["patterns"]),
            runs=[RunRecord(**{k: v for k, v in _json_restore(r).items() if k in record_fields})
                  for r in d["runs"]],
            sweep=_json_restore(d.get("sweep", [])), score=score,
            stored_correlations=None if stored is None else [
                corr.Correlation(**{k: v for k, v in _json_restore(c).items() if k in corr_fields})
                for c in stored])


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _value(d: Any, key: str) -> float | None:
    if isinstance(d, dict) and isinstance(d.get(key), (int, float)):
        return float(d[key])
    return None


def read_run(run_dir: Path, *, task: str, label: str, spec: str, seed: int,
             score: str = "accuracy") -> RunRecord:
    """The :class:`RunRecord` of the run in ``run_dir`` (status ``missing`` if it never ran);
    ``score`` is the metric key the task is ranked by (:data:`SCORES`)."""
    rec = RunRecord(task=task, label=label, spec=spec, seed=seed, status="missing")
    wall = _read_json(run_dir / "wall.json")
    if isinstance(wall, dict):
        rec.wall_seconds = float(wall.get("seconds", 0.0))
    metrics_path = run_dir / "metrics.jsonl"
    if metrics_path.exists():
        from sparsegraph.experiments.train.metrics import read_metrics

        eval_split = "val"
        for r in read_metrics(metrics_path):
            if r.get("split") == eval_split and score in r:
                rec.curve.append([int(r["step"]), float(r[score])])
            elif r.get("split") == "train" and score in r:
                rec.train_curve.append([int(r["step"]), float(r[score])])
    failed = _read_json(run_dir / "failed.json")
    if (run_dir / RESULTS_FILE).exists():
        res = RunResult.read(run_dir)
        rec.status = "done"
        rec.steps = res.steps
        if res.best.metric == score and res.best.value is not None:
            rec.best_dev_score = float(res.best.value)
            rec.best_dev_step = res.best.step
        rec.test_score = _value(res.test_final, score)
        count = _value(res.test_final, "count")
        rec.test_count = None if count is None else int(count)
        rec.test_at_best_dev = _value(res.test_at_best, score)
        rec.tokens_per_s = res.tokens_per_s
        rec.peak_memory_mb = res.peak_memory_bytes / 2**20
        rec.train_seconds = res.train_seconds
        rec.parameters = res.parameters
        pre = res.extra.get("self_pretrain")
        if isinstance(pre, dict):
            rec.pretrain_steps = int(pre["steps"])
            rec.pretrain_mlm_loss = _value(pre, "val_mlm_loss_final")
    elif isinstance(failed, dict):
        rec.status = "failed"
        rec.error = str(failed.get("error", ""))
    elif (run_dir / "run.toml").exists():
        rec.status = "failed"
        rec.error = "the run stopped before finishing (no results.json); run compare again to resume"
    return rec


def _mean(xs: Sequence[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _std(xs: Sequence[float]) -> float | None:
    if len(xs) < 2:
        return None
    m = sum(xs) / len(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def summarise(tr: TaskResults) -> list[dict[str, Any]]:
    """One row per pattern: means (and sample std) over its finished seeds, graph metrics."""
    rows = []
    for p in tr.patterns:
        runs = [r for r in tr.runs if r.label == p["label"] and r.status == "done"]
        row: dict[str, Any] = {"label": p["label"], "spec": p["spec"], "seeds": len(runs),
                               "failed": sum(1 for r in tr.runs if r.label == p["label"]
                                             and r.status != "done")}
        for key in ("test_score", "best_dev_score", "test_at_best_dev"):
            xs = [getattr(r, key) for r in runs if getattr(r, key) is not None]
            row[key] = _mean(xs)
            row[key + "_std"] = _std(xs)
        for key in ("tokens_per_s", "peak_memory_mb", "train_seconds", "wall_seconds"):
            row[key] = _mean([getattr(r, key) for r in runs if getattr(r, key) is not None])
        row.update(p.get("metrics", {}))
        row.update({k + "_std": v for k, v in p.get("metrics_std", {}).items()})
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------
# formatting
# ---------------------------------------------------------------------------------------------

def _num(x: Any, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    if isinstance(x, (int, float)):
        if abs(x) >= 1000:
            return f"{x:,.0f}"
        return f"{x:.{digits}g}"
    return str(x)


#: What the graph columns describe (printed under every report).
GRAPH_NOTE = ("Graph metrics: the layer-0 graph each seed trained on (heads merged, at the attention "
              "length); mean over the seeds, ± std where the seeds' graphs differ.")

TABLE_COLUMNS = ("pattern", "test {s} (mean ± std)", "best dev {s}", "test @ best dev {s}",
                 "tokens/s", "peak MB", "wall s") + tuple(title for _k, title in GRAPH_METRICS)


def table_columns(score: Score) -> tuple[str, ...]:
    """The column titles of a task's table for its score."""
    return tuple(c.format(s=score.title) for c in TABLE_COLUMNS)


def markdown_table(tr: TaskResults) -> str:
    """The task's table (markdown), with a heading line naming the task, length and baseline."""
    rows = summarise(tr)
    sc = tr.scoring
    seeds = max((r["seeds"] for r in rows), default=0)
    base = tr.baseline.get("test")
    unit = "%" if sc.percent else " bits"
    columns = table_columns(sc)
    pretrain = pretrain_words(tr)
    lines = [
        f"### {tr.task} ({tr.preset} preset): {tr.seq_len} tokens, attention length {tr.length}, "
        f"{seeds} seed(s){'; ' + pretrain if pretrain else ''}; {sc.baseline} {sc.format(base)}{unit} (test)",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(columns))) + "|",
    ]
    for r in rows:
        name = r["label"] + (f" ({r['failed']} failed)" if r["failed"] else "")
        cells = [name, sc.format(r["test_score"], r["test_score_std"]),
                 sc.format(r["best_dev_score"], r["best_dev_score_std"]),
                 sc.format(r["test_at_best_dev"], r["test_at_best_dev_std"]),
                 _num(r["tokens_per_s"]), _num(r["peak_memory_mb"], 4), _num(r["wall_seconds"], 3)]
        cells += [_num(r.get(k)) + (f" ± {_num(r[k + '_std'], 2)}" if r.get(k + "_std") else "")
                  for k, _t in GRAPH_METRICS]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Patterns: " + "; ".join(f"`{r['label']}` = `{r['spec']}`" for r in rows))
    lines.append("")
    lines.append(GRAPH_NOTE)
    if pretrain:
        lines.append("")
        lines.append(pretrain_note(tr))
    counts = [r.test_count for r in tr.runs if r.status == "done" and r.test_count]
    verdict = baseline_verdict(rows, base, sc, test_count=min(counts) if counts else None)
    if verdict:
        lines.append("")
        lines.append(verdict)
    lines.append("")
    lines += correlation_lines(tr)
    return "\n".join(lines)


def pretrain_words(tr: TaskResults) -> str:
    """``"self-pretrained N MLM steps (mask p)"`` when the task's runs were self-pretrained
    (its config's ``pretrain.steps > 0``), else ``""``."""
    from sparsegraph.experiments.lra.recipes import SelfPretrainConfig

    raw = tr.config.get("pretrain") if isinstance(tr.config, dict) else None
    if not isinstance(raw, dict) or not raw.get("steps"):
        return ""
    return SelfPretrainConfig(steps=int(raw["steps"]), mask_prob=float(raw.get("mask_prob", 0.15))).describe()


def pretrain_note(tr: TaskResults) -> str:
    """The line under a self-pretrained task's table: what was done, and each pattern's final
    MLM loss on the validation inputs (mean over its finished seeds)."""
    losses = []
    for p in tr.patterns:
        xs = [r.pretrain_mlm_loss for r in tr.runs if r.label == p["label"] and r.status == "done"
              and r.pretrain_mlm_loss is not None]
        losses.append(f"{p['label']} {_num(_mean(xs), 4)}")
    return (f"Self-pretraining (Amos et al., ICLR 2024): every run was first {pretrain_words(tr)} "
            "on the train split's inputs (labels unused), on its own graph, and fine-tuned from "
            "that encoder. Final MLM loss on the validation inputs: " + ", ".join(losses) + ".")


def correlations(tr: TaskResults) -> list[corr.Correlation]:
    """Spearman rho of each graph metric against the test score over the task's patterns, with a
    bootstrap interval over seeds (:mod:`sparsegraph.experiments.compare.correlation`); the stored
    ones for results read back from ``results.json``."""
    if tr.stored_correlations is not None:
        return list(tr.stored_correlations)
    return corr.metric_correlations(corr.runs_by_pattern(tr.patterns, tr.runs),
                                    [k for k, _t in GRAPH_METRICS])


def correlation_lines(tr: TaskResults) -> list[str]:
    """The rank-correlation table (when there are enough patterns and seeds) and its verdict."""
    data = corr.runs_by_pattern(tr.patterns, tr.runs)
    patterns = sum(1 for seeds in data.values() if seeds)
    seeds = min((len(s) for s in data.values() if s), default=0)
    titles = dict(GRAPH_METRICS)
    if patterns < corr.MIN_PATTERNS or seeds < corr.MIN_SEEDS:
        return [corr.verdict(tr.task, [], patterns=patterns, seeds=seeds, titles=titles,
                             score=tr.score)]
    found = correlations(tr)
    lines = [f"| graph metric | Spearman ρ with test {tr.scoring.key} [95% bootstrap over seeds] |",
             "|---|---:|"]
    lines += [f"| {titles[c.metric]} | {c.format()} |" for c in found]
    return lines + ["", corr.verdict(tr.task, found, patterns=patterns, seeds=seeds, titles=titles,
                                     score=tr.score)]


def baseline_verdict(rows: list[dict[str, Any]], base: float | None,
                     score: Score = SCORES["accuracy"], *, test_count: int | None = None) -> str:
    """One line saying which patterns' mean test score beat the baseline and which did not (so a
    run at chance level cannot pass for a result); empty without a baseline or scores.

    With ``test_count`` (examples in the test split) an accuracy must beat the majority class by
    more than two binomial standard errors, ``2 sqrt(p (1 - p) / n)``: a model that predicts the
    majority class on ``n`` fresh examples lands within that of ``p`` about 95% of the time, so a
    smaller lead is not evidence of learning.
    """
    if base is None:
        return ""
    margin = 0.0
    if test_count and score.percent and score.higher_is_better:
        margin = 2 * math.sqrt(base * (1 - base) / test_count)
    done = [r for r in rows if r["test_score"] is not None]
    above = [r["label"] for r in done if score.beats(r["test_score"], base + margin)]
    below = [r["label"] for r in done if not score.beats(r["test_score"], base + margin)]
    if not above and not below:
        return ""
    unit = "%" if score.percent else " bits"
    word = "above" if score.higher_is_better else "below"
    by = (f" by more than 2 standard errors of {test_count} examples, {score.format(margin)} points"
          if margin else "")
    parts = [f"{word} the {score.baseline} ({score.format(base)}{unit}, test){by}: "
             f"{', '.join(above) or 'none'}"]
    if below:
        parts.append(f"not {word} it: {', '.join(below)}")
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


CSV_FIELDS = ("task", "pattern", "spec", "seed", "status", "steps", "score", "test_score",
              "best_dev_score", "best_dev_step", "test_at_best_dev", "tokens_per_s",
              "peak_memory_mb", "train_seconds", "wall_seconds", "parameters",
              "baseline_test", "baseline_val", "length") + tuple(
    k for k, _t in GRAPH_METRICS) + ("error",)


def _csv(tasks: Sequence[TaskResults]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for tr in tasks:
        # each run's row carries the metrics of the graph that seed trained
        metrics = {(p["label"], int(s)): m for p in tr.patterns
                   for s, m in p.get("per_seed", {}).items()}
        for r in tr.runs:
            row = {k: v for k, v in asdict(r).items() if k in CSV_FIELDS}
            row["pattern"] = r.label
            row["score"] = tr.score
            row["baseline_test"] = tr.baseline.get("test")
            row["baseline_val"] = tr.baseline.get("val")
            row["length"] = tr.length
            row.update({k: v for k, v in metrics.get((r.label, r.seed), {}).items() if k in CSV_FIELDS})
            w.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buf.getvalue()


def _json_safe(x: Any) -> Any:
    if isinstance(x, float) and (math.isinf(x) or math.isnan(x)):
        return str(x)  # JSON has no inf; "inf" keeps the meaning
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x


#: What :func:`_json_safe` writes for the floats JSON lacks.
_NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}
#: Keys whose values are text, never a number written as text (a pattern may be labelled "inf").
_TEXT_KEYS = frozenset({"task", "label", "spec", "status", "error", "metric", "backend"})


def _json_restore(x: Any, key: str = "") -> Any:
    """The inverse of :func:`_json_safe` on the numbers of a stored record."""
    if isinstance(x, str) and key not in _TEXT_KEYS:
        return _NON_FINITE.get(x, x)
    if isinstance(x, dict):
        return {k: _json_restore(v, k) for k, v in x.items()}
    if isinstance(x, list):
        return [_json_restore(v, key) for v in x]
    return x


#: The paragraph under a comparison's tables that says what their units and columns are (each
#: table carries :data:`GRAPH_NOTE` itself).
REPORT_NOTE = ("Accuracies in %, bpc in bits per character; std is the sample standard deviation "
               "over seeds (shown with 2+ seeds); peak MB is the training process's peak resident "
               "set; wall s is the whole run process.")


def report(tasks: Sequence[TaskResults]) -> str:
    """The report of a comparison (what ``compare`` prints): one :func:`markdown_table` per
    task, then the runs without results, if any."""
    text = "\n\n".join(markdown_table(tr) for tr in tasks)
    failed = [f"- {r.task} {r.label} seed {r.seed}: {r.status} {r.error}".rstrip()
              for tr in tasks for r in tr.runs if r.status != "done"]
    if failed:
        text += "\n\nRuns without results:\n" + "\n".join(failed)
    return text


def write_all(out: Path, tasks: Sequence[TaskResults], *, command: str = "",
              seeds: Sequence[int] = (), invocations: Sequence[dict[str, Any]] = ()) -> str:
    """Write ``results.json``, ``results.csv`` and ``results.md`` under ``out``; return the
    markdown report (the tables). ``invocations``: the comparison's invocation entries
    (:mod:`sparsegraph.experiments.compare.invocations`), stored with the numbers they made."""
    from sparsegraph.experiments.infra.atomic import atomic_write_bytes

    doc = {
        "command": command,
        "written": time.strftime("%Y-%m-%d %H:%M:%S"),
        "seeds": list(seeds),
        "invocations": [dict(e) for e in invocations],
        "tasks": {tr.task: {
            "preset": tr.preset, "length": tr.length, "seq_len": tr.seq_len, "data": tr.data,
            "score": tr.score, "baseline": tr.baseline, "config": tr.config, "patterns": tr.patterns,
            "summary": summarise(tr), "runs": [asdict(r) for r in tr.runs], "sweep": tr.sweep,
            "correlations": [asdict(c) for c in correlations(tr)],
        } for tr in tasks},
    }
    atomic_write_bytes(out / "results.json", (json.dumps(_json_safe(doc), indent=2) + "\n").encode())
    atomic_write_bytes(out / "results.csv", _csv(tasks).encode())
    text = report(tasks)
    md = (f"# sparsegraph compare\n\n`{command}`\n\n" if command else "# sparsegraph compare\n\n")
    md += text + "\n\n" + REPORT_NOTE + "\n"
    atomic_write_bytes(out / "results.md", md.encode())
    return text


@dataclass
class StoredResults:
    """A comparison's ``results.json`` read back: its tasks, and who made it when."""

    path: Path
    command: str
    written: str
    seeds: list[int]
    invocations: list[dict[str, Any]] | None   # None: written before compare recorded them
    tasks: list[TaskResults]


def read_all(out: Path) -> StoredResults:
    """Read ``out/results.json`` (as :func:`write_all` writes it) back.

    Raises ``ValueError`` naming the file when ``out`` holds no comparison's results.
    """
    path = Path(out) / "results.json"
    if not path.is_file():
        raise ValueError(f"{str(out)!r} is not a sparsegraph compare output directory: it has no "
                         "results.json")
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path} cannot be read as JSON ({e})") from None
    tasks = doc.get("tasks") if isinstance(doc, dict) else None
    if not isinstance(tasks, dict) or not tasks:
        raise ValueError(f"{path} is not a comparison's results (expected a non-empty \"tasks\" "
                         "mapping; a single run's results.json lives one level further down)")
    try:
        read = [TaskResults.from_dict(name, d) for name, d in tasks.items()]
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: {e}") from None
    invocations = doc.get("invocations")
    return StoredResults(path=path, command=str(doc.get("command", "")),
                         written=str(doc.get("written", "")), seeds=list(doc.get("seeds", [])),
                         invocations=None if invocations is None else list(invocations),
                         tasks=read)
