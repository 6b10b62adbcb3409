"""Long Range Arena data layer (LRA: Tay et al. 2021; Pathfinder: Linsley et al. 2018).

Generators (ListOps, Pathfinder / Path-X), file loaders (CIFAR-10, Fashion-MNIST, IMDB, AAN,
released ListOps TSVs), an on-disk cache and a uniform :func:`load_task` interface with
deterministic, resumable batching; generated tasks can also draw their training data fresh every
step, with a difficulty curriculum (:mod:`.fresh`). Importing this package does not import torch.

>>> from sparsegraph.experiments.lra import load_task
>>> task = load_task("listops", n_train=2000, n_val=200, n_test=200,
...                  min_length=100, max_length=500)          # doctest: +SKIP
>>> for batch in task.batches("train", 32, seed=0, epoch=0): ...  # doctest: +SKIP
"""

from .cache import cache_path, cached, default_cache_dir
from .datasets import (FRESH_TASKS, TASKS, Split, TaskData, batch_indices, batches, load_task,
                       majority_baseline, steps_per_epoch)
from .files import (load_aan, load_cifar10, load_fashion_mnist, load_imdb, load_listops_tsv,
                    read_idx, rgb_to_grayscale_tf)
from .fresh import Curriculum, FreshTrain
from .listops import (LISTOPS_CPU, LISTOPS_LRA, ListOpsConfig, Node, evaluate, evaluate_tree,
                      from_lra_string, generate_listops, to_lra_string, tokens_to_tree,
                      tree_to_tokens)
from .pathfinder import (PathfinderConfig, PathfinderTrace, generate_example,
                         generate_pathfinder, markers_connected, pathfinder_config,
                         render_noiseless)

__all__ = [
    "TASKS", "Split", "TaskData", "load_task", "batches", "batch_indices", "steps_per_epoch",
    "majority_baseline", "FRESH_TASKS", "FreshTrain", "Curriculum",
    "ListOpsConfig", "LISTOPS_LRA", "LISTOPS_CPU", "Node", "generate_listops", "evaluate",
    "evaluate_tree", "tree_to_tokens", "tokens_to_tree", "to_lra_string", "from_lra_string",
    "PathfinderConfig", "PathfinderTrace", "pathfinder_config", "generate_pathfinder",
    "generate_example", "render_noiseless", "markers_connected",
    "load_cifar10", "load_fashion_mnist", "load_imdb", "load_aan", "load_listops_tsv",
    "read_idx", "rgb_to_grayscale_tf",
    "cached", "cache_path", "default_cache_dir",
]
