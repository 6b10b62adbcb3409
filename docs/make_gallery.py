"""Regenerate ``docs/patterns.md`` and its pictures in ``docs/img/``: the pattern gallery.

    .venv/bin/python docs/make_gallery.py            # all of it (a few minutes)
    .venv/bin/python docs/make_gallery.py --ns 256   # quicker tables
    .venv/bin/python docs/make_gallery.py --only sink_window,local_global   # redo these entries only

For every entry of ``patterns.examples.GALLERY`` (every built-in pattern, some twice):
a mask picture at n=512 (all heads when the example has several; built for the layer
``GALLERY_LAYERS`` gives, else 0), and the metric table at each ``--ns`` (heads merged, seed 0).
``--only`` recomputes the named entries and rewrites their sections and overview rows in the
existing ``patterns.md`` (the overview pictures are left as they are). Then an overview table at the largest n, metric curves,
coverage curves, and the tutorial section (kept verbatim in ``TUTORIAL`` below; its code is run
by ``tests/test_tutorial.py``). Progress goes to stderr.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # see experiments/measure/analysis_timing.py

import argparse  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from sparsegraph import patterns  # noqa: E402
from sparsegraph.patterns.examples import GALLERY, GALLERY_LAYERS  # noqa: E402
from sparsegraph import analysis, plot  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PICTURE_N = 512
COLUMNS = ["n", "keys/q", "density", "L", "diam", "unreach", "cov@1", "cov@2", "L90", "c-depth", "gap",
           "rw gap", "C", "T", "sigma", "omega"]

TUTORIAL = '''
## Define your own pattern in ten lines

A pattern is a function of the sequence length `n` that returns a boolean mask (or an
`AttentionGraph`); `@patterns.register` makes it first-class: buildable from a spec string,
listed by `sparsegraph patterns`, measurable, drawable and trainable like the built-ins. Save
this as `my_patterns.py`:

```python
# my_patterns.py
import numpy as np
from sparsegraph import patterns


@patterns.register("stripes")
def stripes(n: int, *, window: int = 8, stride: int = 64) -> np.ndarray:
    """A local window plus every stride-th key ("summary" columns every query reads)."""
    i, j = np.ogrid[:n, :n]
    return (np.abs(i - j) <= window // 2) | (j % stride == 0)
```

Keyword parameters with type hints become spec parameters (`stripes:window=16,stride=32`).
Declare `seed`, `heads` or `layer` as keyword parameters to receive them (a random pattern must
draw from `patterns.rng(seed, layer, head)` so that it is reproducible). Now measure it next to
BigBird and draw it:

```python
import my_patterns  # registers "stripes"
from sparsegraph import patterns
from sparsegraph.analysis import analyze, compare_table, format_table
from sparsegraph.plot import plot_mask, save

graph = patterns.get("stripes:window=16,stride=32").build(1024)
result = analyze(graph)
print(result["paths"]["mean"], result["flow"]["depth"], result["spectral"]["gap"])
rows = compare_table([patterns.get("stripes:window=16,stride=32"), patterns.get("bigbird:block=32")],
                     [256, 1024], metrics=["degrees", "paths", "flow", "spectral", "clustering"])
print(format_table(rows))
save(plot_mask(graph), "stripes.png")
```

Every query attends the stripe keys, and every key is a few window hops from a stripe (at most
`stride - 1` positions away, at the end of the sequence), so information needs a fixed number of
layers from any key to any query: the flow depth is 5 for `window=16,stride=32` at every `n`,
while a plain window's grows linearly with `n`. The command line takes the same file with
`--import` (a path or a module name):

```console
$ sparsegraph show stripes:window=4,stride=16 --n 48 --import my_patterns.py
$ sparsegraph analyze stripes:window=16,stride=32 sliding_window:window=17 --n 256,512 --import my_patterns.py
$ sparsegraph show stripes:window=16,stride=32 --n 1024 -o stripes.png --import my_patterns.py
```
'''


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Regenerate docs/patterns.md and docs/img/.")
    ap.add_argument("--ns", default="256,1024,4096", help="lengths of the metric tables (default 256,1024,4096)")
    ap.add_argument("--out", default=str(ROOT / "docs"), help="docs directory (default: the repo's docs/)")
    ap.add_argument("--only", default="", help="comma-separated GALLERY titles: recompute these entries only "
                                               "and update their parts of the existing patterns.md")
    args = ap.parse_args(argv)
    only = [t.strip() for t in args.only.split(",") if t.strip()]
    unknown = [t for t in only if t not in GALLERY]
    if unknown:
        ap.error(f"--only: unknown gallery entries {unknown}; known: {list(GALLERY)}")
    ns = [int(x) for x in args.ns.split(",")]
    docs = Path(args.out)
    img = docs / "img"
    img.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    def say(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.1f}s] {msg}", file=sys.stderr, flush=True)

    sections: list[str] = []
    all_rows = []
    for title, (spec, heads) in GALLERY.items():
        if only and title not in only:
            continue
        say(f"{title}: {spec}")
        pat = patterns.get(spec)
        layer = GALLERY_LAYERS.get(title, 0)
        g = pat.build(PICTURE_N, heads=heads, layer=layer, seed=0)
        fig = plot.plot_heads(g) if heads > 1 else plot.plot_mask(g)
        png = img / f"pattern_{_slug(title)}.png"
        plot.save(fig, png, dpi=100)
        rows = analysis.compare_table([pat], ns, heads=heads, layer=layer, seed=0,
                                      progress=lambda line: say("  " + line) if "building" not in line else None)
        for r in rows:
            r["pattern"] = title
        all_rows += rows
        summary = patterns.info(spec.split(":")[0].split("|")[0]).summary
        sections.append(
            f"### {title}\n\n`{spec}`" + (f" (heads={heads})" if heads > 1 else "")
            + (f" (layer {layer})" if layer else "") + f" — {summary}\n\n"
            f"![{title} at n={PICTURE_N}](img/{png.name})\n\n"
            + analysis.format_table(rows, "markdown", columns=COLUMNS) + "\n"
        )
    if only:
        _update_in_place(docs / "patterns.md", dict(zip(only_titles(only), sections)),
                         [r for r in all_rows if r["n"] == max(ns)])
        say(f"updated {len(sections)} section(s) of {docs / 'patterns.md'}")
        return 0
    say("overview pictures")
    plot.save(plot.plot_metrics(all_rows, ["path_length", "diameter", "layers_90", "spectral_gap", "clustering",
                                           "keys_per_query"]), img / "gallery_metrics.png", dpi=100)
    top = max(ns)
    flows = {r["pattern"]: r for r in all_rows if r["n"] == top and r["pattern"] in
             ("bigbird", "sliding_window", "watts_strogatz", "erdos_renyi", "longformer", "sparse_transformer",
              "dilated_window")}
    plot.save(plot.plot_coverage(flows, title=f"coverage after L layers at n={top}"), img / "gallery_coverage.png",
              dpi=100)
    ws = patterns.build("watts_strogatz:k=4,p=0.15", 40, seed=0)
    plot.save(plot.draw_graph(ws), img / "drawing_watts_strogatz.png", dpi=100)
    overview = analysis.format_table([r for r in all_rows if r["n"] == top], "markdown",
                                     columns=["pattern", *COLUMNS[1:]])
    text = f"""# Pattern gallery

<!-- Generated by `.venv/bin/python docs/make_gallery.py` (docs/make_gallery.py);
     edit that script, not this file. -->

Every built-in pattern of `patterns` (`sparsegraph patterns` lists them with their parameters):
its mask at n={PICTURE_N} and its graph metrics at n = {", ".join(map(str, ns))}, all heads merged,
seed 0. Regenerate with `.venv/bin/python docs/make_gallery.py`. The metrics and their
exact definitions are in [analysis.md](analysis.md); in short: **L** average shortest-path length
(directed, over reachable pairs), **diam** diameter (= **depth**, the layers until every query has
seen every key; `inf` when some never does), **unreach** unreachable (query, key) pairs, **cov@L**
share of pairs connected after L layers, **L90** layers to 90% coverage, **c-depth** for causal
patterns the causal flow depth (the layers until every query has seen every key at or before it;
the ordinary depth of a causal graph is `inf`, since no key reaches an earlier query), **gap** / **rw gap**
spectral gaps of the normalised symmetrised adjacency / of the random walk, **C** / **T**
average clustering / transitivity, **sigma** / **omega** small-world coefficients. `a±e` is a
sampled estimate with its standard error; `lo..hi` bounds.

Colours in the masks: window/local/lattice blue, global red, random green, rewired orange,
stride purple, self-loops grey, any other edge dark; a picture of a long sequence shades each
pixel by the share of its token pairs that are edges.

## Overview at n={top}

{overview}

![metrics against n](img/gallery_metrics.png)

![coverage after L layers](img/gallery_coverage.png)

A ring-like pattern drawn as a graph (`sparsegraph show watts_strogatz:k=4,p=0.15 --n 40 --draw graph -o ws.png`):

![Watts-Strogatz drawn on a circle](img/drawing_watts_strogatz.png)

## The patterns

""" + "\n".join(sections) + TUTORIAL
    (docs / "patterns.md").write_text(text)
    say(f"wrote {docs / 'patterns.md'} and {len(list(img.glob('*.png')))} pictures")
    return 0


def only_titles(only: list[str]) -> list[str]:
    """The ``--only`` titles in gallery order (the order their sections are computed in)."""
    return [t for t in GALLERY if t in only]


def _update_in_place(md: Path, sections: dict[str, str], rows: list) -> None:
    """Replace (or insert, in gallery order) the sections and overview rows of ``sections``."""
    text = md.read_text()
    head, sep, tail = text.partition("\n## Define your own pattern")
    if not sep:
        raise SystemExit(f"{md}: no '## Define your own pattern' section; regenerate it whole")
    pre, marker, body = head.partition("\n## The patterns\n")
    chunks = re.split(r"(?m)^(?=### )", body)
    found = {}
    for c in chunks[1:]:
        found[c.splitlines()[0][4:].strip()] = c.rstrip("\n") + "\n"
    found.update(sections)
    order = [t for t in GALLERY if t in found] + [t for t in found if t not in GALLERY]
    body = chunks[0] + "\n".join(found[t] for t in order)
    table = analysis.format_table(rows, "markdown", columns=["pattern", *COLUMNS[1:]]).splitlines()[2:]
    new_rows = {r.split("|")[1].strip(): r for r in table}
    lines = pre.splitlines()
    idx = [i for i, line in enumerate(lines) if line.startswith("| ") and line.split("|")[1].strip() in GALLERY]
    if idx:
        existing = {lines[i].split("|")[1].strip(): lines[i] for i in idx}
        existing.update(new_rows)
        merged = [existing[t] for t in GALLERY if t in existing]
        lines[idx[0]: idx[-1] + 1] = merged
    md.write_text("\n".join(lines) + ("\n" if pre.endswith("\n") else "") + marker + body + sep + tail)


if __name__ == "__main__":
    sys.exit(main())
