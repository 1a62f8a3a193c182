"""The compact forest format of ``mlh optimize``: the preprocessing (numpy, ``mlhelpers.tools.compact_preprocess``,
when it covers the preprocessor; else a small ONNX graph; else scikit-learn's in skops) plus the trees as
flat numpy arrays (``.npz``, loaded without pickle), exact and a few bytes a split.

Hand-written because no installed library keeps these trees both exact and small: skl2onnx stores ~40 bytes
a node and needs many GB to convert a 300-tree forest (float32 thresholds there also broke parity), treelite
keeps per-node statistics, and scikit-learn's own nodes take 72 bytes. Here only splits are stored (a leaf
lives in its parent): 7 bytes each when the forest has under 32 features and under 65,536 distinct
thresholds, leaf values and right-child offsets (the benchmark forest), 11 when its leaf values are more
varied (a bootstrap-subsampled forest), at most 16: the feature with three flags in its top bits (left
child is a leaf, right child is a leaf, NaN goes left as scikit-learn learnt; uint8 below 32 features), an
index into the forest's distinct thresholds (uint16; thresholds kept in float64, so every split decides
exactly as scikit-learn's, which compares float32 inputs with float64 thresholds), and for each child
either the row of its value in the forest's distinct leaf values or, for an internal right child, its
offset (an internal left child is the next split: the preorder scikit-learn builds). How rows walk them:
``mlhelpers.tools.forest_walk`` (in C, built at install, each (tree, row) pair in one loop; numpy/numba
without it).
"""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlhelpers.core.artifacts import atomic_path
from mlhelpers.formats import onnx_io, skops_io
from mlhelpers.formats.converters import register_converters
from mlhelpers.tools.compact_preprocess import NumpyPreprocessor, numpy_spec
from mlhelpers.tools.forest_walk import CompactForest


class OptimizeError(ValueError):
    """The model or sample cannot be optimized as asked; the message says why and what to do."""


COMPACT_FORMAT = "mlh-compact-forest"


COMPACT_VERSION = 3  # 3: numpy preprocessing (``preprocess: "numpy"``); 2 files (ONNX or skops) still load


READABLE_VERSIONS = (2, 3)


_PREPROCESS_ROWS = 4_096  # rows preprocessed at once in batch prediction


# and at most this many feature cells (16 MB of float64 features, 8 MB as float32): pizzaplace's one-hot order times
# give 11,176 features, and its 2,000-row batch preprocessed at once peaked at 479 MB (the memory goal: 430)
_PREPROCESS_CELLS = 1 << 21


def compact_applies(estimator) -> bool:
    from sklearn.ensemble import (ExtraTreesClassifier, ExtraTreesRegressor, RandomForestClassifier,
                                  RandomForestRegressor)
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor  # ExtraTree* included

    return isinstance(estimator, (RandomForestClassifier, RandomForestRegressor, ExtraTreesClassifier,
                                  ExtraTreesRegressor, DecisionTreeClassifier, DecisionTreeRegressor))


def _trees_of(estimator) -> list:
    # forests average their trees; gradient boosting sums scaled trees, which this format does not do
    if not compact_applies(estimator):
        raise OptimizeError(f"{type(estimator).__name__} is not a scikit-learn forest or tree; "
                            f"the compact format covers RandomForest, ExtraTrees and DecisionTree.")
    if getattr(estimator, "n_outputs_", 1) != 1:
        raise OptimizeError("multi-output trees are not supported by the compact format.")
    return list(getattr(estimator, "estimators_", [estimator]))


def _preorder(tree) -> np.ndarray:
    """Node ids in preorder (left subtree first): the order the compact layout needs."""
    left, right = tree.children_left, tree.children_right
    order, stack = [], [0]
    while stack:
        node = stack.pop()
        order.append(node)
        if left[node] >= 0:
            stack.extend((right[node], left[node]))
    return np.asarray(order)


def compact_forest(estimator, n_trees: int | None = None) -> CompactForest:
    """Flatten a fitted forest (or its first ``n_trees`` trees) into a ``CompactForest``."""
    from sklearn.base import is_classifier

    trees = _trees_of(estimator)[:n_trees]
    classification = is_classifier(estimator)
    n_features = int(estimator.n_features_in_)
    parts: dict[str, list] = {key: [] for key in ("feature", "threshold", "left_leaf", "right_leaf",
                                                  "missing_left", "left", "right", "leaf_values")}
    roots, n_splits, n_leaves = [], 0, 0
    for tree in trees:
        t = tree.tree_
        left, right = t.children_left, t.children_right
        is_leaf = left < 0
        order = np.arange(t.node_count)
        if not np.array_equal(left[~is_leaf], np.flatnonzero(~is_leaf) + 1):
            order = _preorder(t)  # best-first trees (max_leaf_nodes) are not in preorder
        splits = order[~is_leaf[order]]
        leaves = np.flatnonzero(is_leaf)
        leaf_number = np.zeros(t.node_count, dtype=np.int64)  # forest-wide leaf number, at leaves
        leaf_number[leaves] = n_leaves + np.arange(len(leaves))
        value = t.value[leaves, 0, :]
        if classification:  # what DecisionTreeClassifier.predict_proba does per leaf
            total = value.sum(axis=1, keepdims=True)
            value = value / np.where(total == 0.0, 1.0, total)
        parts["leaf_values"].append(value if classification else value[:, 0])
        roots.append(n_splits)
        if not len(splits):  # a lone leaf: one split whose both ways reach it
            for key, item in (("feature", 0), ("threshold", 0.0), ("left_leaf", True), ("right_leaf", True),
                              ("missing_left", False), ("left", n_leaves), ("right", n_leaves)):
                parts[key].append(np.asarray([item]))
        else:
            position = np.zeros(t.node_count, dtype=np.int64)
            position[splits] = np.arange(len(splits))
            left_child, right_child = left[splits], right[splits]
            parts["feature"].append(t.feature[splits])
            parts["threshold"].append(t.threshold[splits])
            parts["left_leaf"].append(is_leaf[left_child])
            parts["right_leaf"].append(is_leaf[right_child])
            missing_left = getattr(t, "missing_go_to_left", None)  # scikit-learn >= 1.3
            parts["missing_left"].append(np.zeros(len(splits), bool) if missing_left is None
                                         else missing_left[splits].astype(bool))
            parts["left"].append(np.where(is_leaf[left_child], leaf_number[left_child], 0))
            parts["right"].append(np.where(is_leaf[right_child], leaf_number[right_child],
                                           position[right_child] - position[splits]))
        n_splits += max(len(splits), 1)
        n_leaves += len(leaves)
    joined = {key: np.concatenate(items) for key, items in parts.items()}
    thresholds, split = np.unique(joined["threshold"], return_inverse=True)
    values, value_row = np.unique(joined["leaf_values"], axis=0, return_inverse=True)
    value_row = value_row.ravel()
    left_leaf, right_leaf = joined["left_leaf"], joined["right_leaf"]
    left = np.where(left_leaf, value_row[joined["left"]], 0)
    right = np.where(right_leaf, value_row[joined["right"]], joined["right"])
    feature_type = np.uint8 if n_features < 2**5 else np.uint16 if n_features < 2**13 else np.uint32
    flag_shift = np.dtype(feature_type).itemsize * 8 - 3
    feature = joined["feature"].astype(np.int64)
    for bit, flags in enumerate((left_leaf, right_leaf, joined["missing_left"])):
        feature |= flags.astype(np.int64) << (flag_shift + bit)
    reference_type = np.uint16 if max(left.max(initial=0), right.max(initial=0)) < 2**16 else np.uint32
    return CompactForest(
        task="classification" if classification else "regression",
        feature=feature.astype(feature_type),
        split=split.ravel().astype(np.uint16 if len(thresholds) <= 2**16 else np.uint32),
        left=left.astype(reference_type),
        right=right.astype(reference_type),
        roots=np.asarray(roots, dtype=np.int64),
        thresholds=thresholds.astype(np.float64),
        values=values.astype(np.float64),
        n_features=n_features,
    )


class CompactModel:
    """A pipeline served as ONNX preprocessing (or the fitted preprocessor) + a ``CompactForest``.

    ``predict(frame)`` / ``predict_proba(frame)`` take the DataFrame the pipeline takes.
    """

    def __init__(self, forest: CompactForest, preprocess: Any, classes: np.ndarray | None = None):
        self.forest, self.preprocess, self.classes_ = forest, preprocess, classes

    def features(self, frame: pd.DataFrame) -> np.ndarray:
        """The preprocessed feature matrix the trees read."""
        X = self.preprocess.transform(frame)
        return X.toarray() if hasattr(X, "toarray") else np.asarray(X)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Mean class probabilities over the trees (classification only)."""
        if self.forest.task != "classification":
            raise AttributeError("this compact model is a regressor: it has no probabilities.")
        return self._values(frame)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Predicted values (regression) or labels (classification), one per row."""
        values = self._values(frame)
        if self.forest.task == "classification":
            return self.classes_[np.argmax(values, axis=1)]
        return values


    def _values(self, frame: pd.DataFrame) -> np.ndarray:
        # preprocessed a slice at a time, so a large batch never holds all its features at once; the walk
        # (numpy or compiled) is chosen once for the whole batch
        compiled = self.forest.wants_compiled(len(frame))
        rows = max(1, min(_PREPROCESS_ROWS, _PREPROCESS_CELLS // max(self.forest.n_features, 1)))
        if len(frame) <= rows:
            return self.forest.predict_values(self.features(frame), compiled)
        return np.concatenate([self.forest.predict_values(self.features(frame.iloc[start:start + rows]), compiled)
                               for start in range(0, len(frame), rows)])


def _preprocessor_onnx(pipeline, sample: pd.DataFrame) -> tuple[bytes | None, str | None]:
    """The pipeline's preprocessing as ONNX bytes if it converts and reproduces the float32 features."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, StringTensorType

    preprocessor = pipeline[:-1]
    columns = onnx_io.input_columns(pipeline, sample)
    try:
        register_converters()
        types = [(c, DoubleTensorType([None, 1]) if onnx_io.is_numeric(sample[c])
                  else StringTensorType([None, 1])) for c in columns]
        model = convert_sklearn(preprocessor, initial_types=types, target_opset={"": 18, "ai.onnx.ml": 3})
        onnx_io.restore_input_names(model, columns)
        onnx_features = onnx_io.OnnxPredictor(model).transform(sample[columns])
    except Exception as error:
        return None, f"{type(error).__name__}: {str(error).strip()[:200]}"
    expected = preprocessor.transform(sample[columns])
    expected = expected.toarray() if hasattr(expected, "toarray") else np.asarray(expected)
    if onnx_features.shape != expected.shape or not np.array_equal(
            onnx_features.astype(np.float32), expected.astype(np.float32), equal_nan=True):  # NaN: missing numbers
        return None, "the ONNX preprocessing does not reproduce the features exactly on the sample"
    return model.SerializeToString(), None


def _edge_rows(sample: pd.DataFrame) -> pd.DataFrame:
    """The sample's rows again with an unseen category in every text column and NaN in every number column."""
    edge = sample.copy()
    for column in edge.columns:
        numeric = onnx_io.is_numeric(edge[column])
        edge[column] = pd.Series(np.nan if numeric else "mlh-unseen-category", index=edge.index,
                                 dtype=float if numeric else object)
    return pd.concat([sample, edge.iloc[:50]])


def _preprocessor_numpy(pipeline, sample: pd.DataFrame) -> tuple[bytes | None, str | None]:
    """The pipeline's preprocessing as a JSON spec for ``NumpyPreprocessor`` if it covers it and reproduces the
    float32 features on the sample and on its edge rows (unseen categories, missing numbers)."""
    spec, reason = numpy_spec(pipeline[:-1])
    if spec is None:
        return None, reason
    rows = sample[onnx_io.input_columns(pipeline, sample)]
    for frame in (rows, _edge_rows(rows)):
        try:
            expected = pipeline[:-1].transform(frame)
        except Exception:  # the pipeline itself refuses these rows: nothing to reproduce
            continue
        expected = expected.toarray() if hasattr(expected, "toarray") else np.asarray(expected, dtype=np.float64)
        try:
            got = NumpyPreprocessor(spec).transform(frame)
        except Exception as error:
            return None, f"the numpy preprocessing failed ({type(error).__name__}: {str(error)[:200]})"
        if got.shape != expected.shape or not np.array_equal(got.astype(np.float32), expected.astype(np.float32),
                                                             equal_nan=True):
            return None, "the numpy preprocessing does not reproduce the features exactly on the sample"
    return json.dumps(spec).encode(), None


WALKS = ("auto", "compiled")  # how a loaded file walks its trees (see ``save_compact``)


def save_compact(pipeline, sample: pd.DataFrame, path: str | Path, n_trees: int | None = None,
                 walk: str = "auto") -> Path:
    """Write the pipeline as a compact ``.npz``: numpy preprocessing when it covers the preprocessor exactly, else
    ONNX when that converts exactly, else scikit-learn's in skops. ``walk`` matters only where the C walk is not
    built (``forest_walk.c_walk``; with it every call walks in C): "auto" walks in numpy until a batch of
    ``forest_walk.NUMBA_MIN_CELLS`` cells (a small serving process), "compiled" loads numba with the model and walks
    every call compiled (faster single rows and small batches, ~133 MB more)."""
    if walk not in WALKS:
        raise ValueError(f"walk={walk!r}: expected one of {WALKS}")
    forest = compact_forest(pipeline[-1], n_trees)
    preprocess, numpy_reason = _preprocessor_numpy(pipeline, sample)
    kind, reason = "numpy", None
    if preprocess is None:
        preprocess, reason = _preprocessor_onnx(pipeline, sample)
        reason = f"numpy: {numpy_reason}" + ("" if reason is None else f"; onnx: {reason}")
        kind = "onnx"
    if preprocess is None:  # keep scikit-learn's preprocessing, in skops inside the same file
        kind = "skops"
        buffer = io.BytesIO()
        import skops.io as sio

        sio.dump(skops_io.with_named_columns(pipeline[:-1]), buffer)
        preprocess = buffer.getvalue()
    classes = getattr(pipeline, "classes_", None)
    meta = {"format": COMPACT_FORMAT, "version": COMPACT_VERSION, "task": forest.task,
            "n_features": forest.n_features,
            "classes": None if classes is None else np.asarray(classes).tolist(),
            "columns": onnx_io.input_columns(pipeline, sample), "preprocess": kind,
            "preprocess_reason": reason, "source": type(pipeline[-1]).__name__, "walk": walk}
    path = Path(path)
    with atomic_path(path) as temp:
        with open(temp, "wb") as handle:
            np.savez_compressed(handle, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
                                preprocess=np.frombuffer(preprocess, dtype=np.uint8),
                                feature=forest.feature, split=forest.split, left=forest.left, right=forest.right,
                                roots=forest.roots, thresholds=forest.thresholds, values=forest.values)
    return path


def load_compact(path: str | Path, extra_trusted: list[str] | tuple[str, ...] = ()) -> CompactModel:
    """Load a compact ``.npz`` written by ``save_compact`` (no pickle: arrays, JSON and ONNX only)."""
    path = Path(path)
    if not path.is_file():
        raise skops_io.ModelFileError(f"model file {path} does not exist; check the path.")
    try:
        with np.load(path, allow_pickle=False) as stored:
            meta = json.loads(stored["meta"].tobytes())
            if meta.get("format") != COMPACT_FORMAT:
                raise skops_io.ModelFileError(f"{path} is not a {COMPACT_FORMAT} file; write one with "
                                                 "`mlh optimize`.")
            if meta.get("version") not in READABLE_VERSIONS:
                raise skops_io.ModelFileError(
                    f"{path} is a {COMPACT_FORMAT} v{meta.get('version')} file; this version reads "
                    f"v{' and v'.join(map(str, READABLE_VERSIONS))}: run `mlh optimize` again on the original model.")
            arrays = {k: stored[k] for k in ("feature", "split", "left", "right", "roots", "thresholds", "values")}
            preprocess = stored["preprocess"].tobytes()
    except skops_io.ModelFileError:
        raise
    except Exception as error:
        raise skops_io.ModelFileError(f"{path} is not a compact model file ({type(error).__name__}: "
                                         f"{error}); write it with `mlh optimize`.") from error
    forest = CompactForest(task=meta["task"], n_features=meta["n_features"], **arrays)
    if meta["preprocess"] == "numpy":
        preprocessor = NumpyPreprocessor(json.loads(preprocess))
    elif meta["preprocess"] == "onnx":
        preprocessor = onnx_io.OnnxPredictor(preprocess)
    else:
        with tempfile.TemporaryDirectory(prefix="mlh-compact-") as tmp:
            skops_file = Path(tmp) / "preprocess.skops"
            skops_file.write_bytes(preprocess)
            preprocessor = skops_io.load_skops(skops_file, extra_trusted)
    classes = None if meta["classes"] is None else np.asarray(meta["classes"])
    if meta.get("walk") == "compiled":
        forest.compiled_always = True
        # without the C walk, numba and its cached machine code load now, with the model, not at the first request
        forest.predict_values(np.zeros((2, forest.n_features)))  # two rows: both compiled functions
    return CompactModel(forest, preprocessor, classes)
