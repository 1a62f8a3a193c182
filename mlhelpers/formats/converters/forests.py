"""Fitted scikit-learn forests and trees as ai.onnx.ml opset 5 ``TreeEnsemble`` attributes, exact in double.

``forest_tree_ensembles(model, max_splits) -> list[ForestEnsemble]`` builds the attributes of one or
more ``TreeEnsemble`` nodes (``forest_graph`` writes the graph around them). Hand-written because
skl2onnx's forest converter is not exact: it ignores the per-split NaN direction and compares double
inputs with thresholds without scikit-learn's float32 rounding (438,004 off on the Ames forest's
edge rows, issue 15), and writes ~96 bytes a node.

How every prediction matches scikit-learn (max difference ~1e-16 relative):

* **Splits.** scikit-learn casts inputs to float32 and compares ``x <= threshold`` with a float64
  threshold; the graph casts its input to float32 and back (both exact) and compares in double. Each
  threshold is stored rounded *down* to float32: for a float32 ``x``, ``x <= t`` holds exactly when
  ``x <= round_down_f32(t)``, so routing is unchanged while the doubles deflate ~2x better.
* **Missing values.** scikit-learn >= 1.3 learns per split where NaN goes (``missing_go_to_left``,
  set on every split: the majority child where training saw none); it becomes
  ``nodes_missing_value_tracks_true`` (true branch = ``x <= t`` = left).
* **Leaves.** A regressor's leaf weight is ``tree_.value``; a classifier's the class fractions
  scikit-learn returns per tree. The node sums leaves in double and the graph divides by the number
  of trees, as ``ForestRegressor.predict`` / ``ForestClassifier.predict_proba`` do. Binary: trees hold
  P(class 1) only; 3+ classes: each tree is written once per class (opset 5 leaves hold one target).

Distinct leaf values are stored once (leaves share them by index): a split costs ~20-25 bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# skl2onnx names of the estimators this converter takes over
FOREST_TYPES = ("RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier",
                "ExtraTreesRegressor", "DecisionTreeClassifier", "DecisionTreeRegressor",
                "ExtraTreeClassifier", "ExtraTreeRegressor")

_BRANCH_LEQ = 0

# Splits per TreeEnsemble node. onnxruntime builds each node's trees through temporary copies (opset 5 ->
# 3 attributes -> its node structs), so the load peak grows with the largest node: the 500-tree Ames forest
# (711k splits) loaded at +454 MB in one node, +226 MB in nodes of 200k splits, +165 MB at 50k and +159 MB
# at 20k, for the same steady state (+103 MB once freed memory is returned, see OnnxPredictor) and the
# same one-row time (0.26-0.32 ms).
MAX_SPLITS_PER_NODE = 50_000


@dataclass
class ForestEnsemble:
    """A fitted forest (or a group of its trees) as ``TreeEnsemble`` attributes in numpy arrays.

    ``n_targets`` is 1 for regression and binary classification (P(class 1)), else the number of
    classes; ``n_trees`` counts the forest's trees in this group (not the per-class copies).
    """

    n_targets: int
    n_trees: int
    n_classes: int                      # 0 for regression
    tree_roots: np.ndarray
    feature: np.ndarray
    split: np.ndarray                   # float64 (float32-representable values)
    missing_left: np.ndarray            # bool per node
    true_id: np.ndarray
    true_leaf: np.ndarray
    false_id: np.ndarray
    false_leaf: np.ndarray
    leaf_target: np.ndarray
    leaf_weight: np.ndarray             # float64
    notes: list[str] = field(default_factory=list)

    @property
    def n_nodes(self) -> int:
        """Entries in the ``nodes_*`` arrays (splits, plus one per single-leaf tree)."""
        return len(self.feature)

    def attributes(self) -> list:
        """The node's attributes as ``AttributeProto`` objects (attach with ``node.attribute.extend``).

        Integer lists go from numpy straight into the protos: 7M splits convert with ~1.5 GB less
        memory than through ``onnx.helper.make_node(**kwargs)`` and its Python lists.
        """
        from onnx import AttributeProto, helper, numpy_helper

        def ints(name: str, values: np.ndarray):
            proto = AttributeProto(name=name, type=AttributeProto.INTS)
            proto.ints.extend(np.asarray(values, dtype=np.int64))
            return proto

        def tensor(name: str, values: np.ndarray):
            return helper.make_attribute(name, numpy_helper.from_array(values, name=name))

        protos = [helper.make_attribute("n_targets", int(self.n_targets)),
                  helper.make_attribute("aggregate_function", 1),  # SUM (the Div follows)
                  helper.make_attribute("post_transform", 0),  # NONE
                  ints("tree_roots", self.tree_roots), ints("nodes_featureids", self.feature),
                  tensor("nodes_splits", self.split.astype(np.float64)),
                  tensor("nodes_modes", np.full(self.n_nodes, _BRANCH_LEQ, dtype=np.uint8)),
                  ints("nodes_truenodeids", self.true_id), ints("nodes_trueleafs", self.true_leaf),
                  ints("nodes_falsenodeids", self.false_id), ints("nodes_falseleafs", self.false_leaf),
                  ints("leaf_targetids", self.leaf_target),
                  tensor("leaf_weights", self.leaf_weight.astype(np.float64))]
        if self.missing_left.any():  # absent means "NaN takes the false branch" everywhere
            protos.append(ints("nodes_missing_value_tracks_true", self.missing_left))
        return protos


def _round_down_to_float32(values: np.ndarray) -> np.ndarray:
    """The largest float32 value <= each float64 value (as float64): same routing for float32 inputs."""
    as32 = values.astype(np.float32)
    above = as32.astype(np.float64) > values
    as32[above] = np.nextafter(as32[above], np.float32(-np.inf))
    return as32.astype(np.float64)


def trees_of(model) -> list:
    """The fitted trees of a forest (or the tree itself); refuses multi-output models."""
    members = getattr(model, "estimators_", None)
    trees = [model] if members is None else list(members)
    if not trees or not all(hasattr(tree, "tree_") for tree in trees):
        raise NotImplementedError(f"{type(model).__name__}: expected a fitted scikit-learn forest or tree")
    if getattr(model, "n_outputs_", 1) != 1:
        raise NotImplementedError(f"{type(model).__name__} with {model.n_outputs_} outputs does not convert "
                                  "(one TreeEnsemble target per class or value)")
    return trees


def forest_tree_ensemble(model, trees: list | None = None, round_thresholds: bool = True) -> ForestEnsemble:
    """``trees`` (default: all of ``model``'s) as one ``ForestEnsemble``.

    ``round_thresholds`` stores thresholds rounded down to float32 (exact for the float32 inputs the
    graph compares, see the module docstring); False keeps scikit-learn's float64 thresholds.
    """
    trees = trees_of(model) if trees is None else trees
    classification = hasattr(model, "classes_")
    n_classes = len(model.classes_) if classification else 0
    # the value each tree's leaves add, per target: regression, binary P(class 1), else one per class
    per_target: list[int] = [1] if n_classes == 2 else list(range(n_classes)) if classification else [0]

    feature, split, missing, true_id, true_leaf, false_id, false_leaf, roots = ([] for _ in range(8))
    leaf_rows: list[np.ndarray] = []  # per (tree, target): the leaf values, looked up below
    leaf_refs: list[tuple[np.ndarray, np.ndarray, int]] = []  # (true refs, false refs, target) per block
    n_nodes = 0
    for target_column in per_target:
        for tree in trees:
            t = tree.tree_
            left, right = t.children_left, t.children_right
            is_leaf = left < 0
            internal = np.flatnonzero(~is_leaf)
            values = t.value[:, 0, target_column].astype(np.float64)
            roots.append(n_nodes)
            if not len(internal):  # a lone leaf: one entry whose both ways reach it (ONNX's convention)
                for parts, value in ((feature, 0), (split, 0.0), (missing, False), (true_id, 0), (false_id, 0),
                                     (true_leaf, 1), (false_leaf, 1)):
                    parts.append(np.array([value]))
                leaf_rows.append(values[[0]])
                leaf_refs.append((np.zeros(1, np.int64), np.zeros(1, np.int64), target_column))
                n_nodes += 1
                continue
            internal_pos = np.full(t.node_count, -1, dtype=np.int64)
            internal_pos[internal] = n_nodes + np.arange(len(internal))
            lc, rc = left[internal], right[internal]
            feature.append(t.feature[internal].astype(np.int64))
            split.append(t.threshold[internal].astype(np.float64))
            flags = getattr(t, "missing_go_to_left", None)  # scikit-learn >= 1.3
            missing.append(np.zeros(len(internal), bool) if flags is None else flags[internal].astype(bool))
            true_leaf.append(is_leaf[lc].astype(np.int64))
            false_leaf.append(is_leaf[rc].astype(np.int64))
            # internal children: their node position now; leaf children: their node index, mapped to
            # a row of the forest's distinct leaf values below
            true_id.append(np.where(is_leaf[lc], 0, internal_pos[lc]))
            false_id.append(np.where(is_leaf[rc], 0, internal_pos[rc]))
            leaf_rows.append(values)
            leaf_refs.append((np.where(is_leaf[lc], lc, -1), np.where(is_leaf[rc], rc, -1), target_column))
            n_nodes += len(internal)

    leaf_target, leaf_weight = [], []
    offset = 0
    distinct_of: dict[int, tuple[np.ndarray, int]] = {}
    for target_index, target_column in enumerate(per_target):
        used = np.concatenate([rows[np.concatenate([r[0][r[0] >= 0], r[1][r[1] >= 0]])]
                               for rows, r in zip(leaf_rows, leaf_refs) if r[2] == target_column])
        distinct = np.unique(used)  # NaN never occurs: leaves hold means of finite targets
        distinct_of[target_column] = (distinct, offset)
        leaf_weight.append(distinct)
        leaf_target.append(np.full(len(distinct), target_index, dtype=np.int64))
        offset += len(distinct)
    for i, (rows, (true_refs, false_refs, target_column)) in enumerate(zip(leaf_rows, leaf_refs)):
        distinct, start = distinct_of[target_column]
        for refs, ids in ((true_refs, true_id), (false_refs, false_id)):
            at_leaf = refs >= 0
            ids[i] = ids[i].astype(np.int64)
            ids[i][at_leaf] = start + np.searchsorted(distinct, rows[refs[at_leaf]])
    thresholds = np.concatenate(split).astype(np.float64)
    ensemble = ForestEnsemble(
        n_targets=len(per_target), n_trees=len(trees), n_classes=n_classes,
        tree_roots=np.asarray(roots, dtype=np.int64), feature=np.concatenate(feature).astype(np.int64),
        split=_round_down_to_float32(thresholds) if round_thresholds else thresholds,
        missing_left=np.concatenate(missing).astype(bool), true_id=np.concatenate(true_id),
        true_leaf=np.concatenate(true_leaf).astype(np.int64), false_id=np.concatenate(false_id),
        false_leaf=np.concatenate(false_leaf).astype(np.int64), leaf_target=np.concatenate(leaf_target),
        leaf_weight=np.concatenate(leaf_weight))
    if n_classes > 2:
        ensemble.notes.append(f"{n_classes} classes: each tree is written once per class")
    return ensemble


def forest_tree_ensembles(model, max_splits: int = MAX_SPLITS_PER_NODE,
                          round_thresholds: bool = True) -> list[ForestEnsemble]:
    """The forest as consecutive groups of trees of at most ``max_splits`` node entries each (a single
    tree may exceed it), one ``ForestEnsemble`` per group; their sums add up to the forest's."""
    trees = trees_of(model)
    copies = len(model.classes_) if hasattr(model, "classes_") and len(model.classes_) > 2 else 1
    groups, current, size = [], [], 0
    for tree in trees:
        entries = max(int((tree.tree_.children_left >= 0).sum()), 1) * copies
        if current and size + entries > max_splits:
            groups.append(current)
            current, size = [], 0
        current.append(tree)
        size += entries
    groups.append(current)
    return [forest_tree_ensemble(model, group, round_thresholds) for group in groups]
