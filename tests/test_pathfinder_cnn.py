"""sparsegraph.experiments.measure.pathfinder_cnn: the convolutional calibration run of docs/results.md."""

from __future__ import annotations


def test_pathfinder_cnn_probe_runs(tmp_path, capsys) -> None:
    from sparsegraph.experiments.measure.pathfinder_cnn import main

    assert main(["--n-train", "64", "--n-val", "16", "--steps", "4", "--eval-every", "2",
                 "--batch", "8", "--channels", "4", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "train 64 images" in out and out.count("val ") == 3  # the header and steps 2, 4
