"""How rows walk a compact forest: the ``CompactForest`` arrays (one entry per split, see ``mlhelpers.tools.compact``
for the layout) and its walks: compiled in C (``_forest_walk.c``, built at install: every call, no extra memory),
and where that module is missing (sources copied without building) numpy's level-by-level walk for single rows and
small batches and, for large batches (``NUMBA_MIN_CELLS``), one compiled by numba, imported only then.

``CompactForest.predict_values(X)`` / ``leaf_values(X)`` take the preprocessed float matrix; ``c_walk()`` is the C
module or None, ``compiled_walk()`` the numba functions or None; ``compact_runtime()`` names the modules a compact
serving process imports whatever the model (its memory floor). ``MLH_COMPACT_WALK=fallback`` serves as if the C
module were missing, ``MLH_COMPACT_NUMPY=1`` walks in numpy only.
"""

from __future__ import annotations

import importlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

# rows x trees walked at once: bounds the walk's scratch memory (~0.3 MB a thousand cells) at no
# cost in speed (larger chunks were no faster on the 300-tree forest)
_BATCH_CELLS = 65_536


# numba is loaded (and the compiled walk used) only for a batch of at least this many (row, tree) cells: below
# that the numpy walk takes under ~3 s, about what loading numba costs once, and a process serving single rows
# or small batches never pays numba's ~133 MB (the Ames forest: 500 trees x 2,000 rows)
NUMBA_MIN_CELLS = 1 << 20


def _workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass
class CompactForest:
    """Every tree of a fitted forest in flat arrays, one entry per split (see the module docstring)."""

    task: str
    feature: np.ndarray      # per split: feature index; top 3 bits: left is a leaf, right is a leaf, NaN left
    split: np.ndarray        # per split: index into thresholds
    left: np.ndarray         # per split: leaf-value row of a leaf left child (else unused: the next split)
    right: np.ndarray        # per split: leaf-value row of a leaf right child, else the offset to it
    roots: np.ndarray        # first split of each tree
    thresholds: np.ndarray   # distinct split thresholds, float64
    values: np.ndarray       # distinct leaf values: (k,) regression or (k, n_classes) probabilities
    n_features: int
    # every call walks compiled, numba loaded with the model (a file `mlh optimize` wrote with walk "compiled":
    # where the memory goal leaves room for numba, small batches and single rows are no longer walked in numpy)
    compiled_always: bool = False
    _layout: tuple | None = field(default=None, init=False, repr=False, compare=False)
    _c_checked: bool = field(default=False, init=False, repr=False, compare=False)

    @property
    def n_trees(self) -> int:
        return len(self.roots)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.feature, self.split, self.left, self.right, self.roots,
                                      self.thresholds, self.values))

    def leaf_values(self, X: np.ndarray) -> np.ndarray:
        """Leaf value of every tree for every row: (rows, trees) or (rows, trees, classes)."""
        return np.concatenate(self._chunks(X, lambda leaves: leaves) or [self.values[:0]])

    def predict_values(self, X: np.ndarray, compiled: bool | None = None) -> np.ndarray:
        """Regression: the forest's mean prediction; classification: mean class probabilities. ``compiled``: walk
        compiled (in C where built, else with numba where installed), False: in numpy; None: ``wants_compiled``."""
        X = self._checked(X)
        if compiled is None:
            compiled = self.wants_compiled(len(X))
        if compiled and (c_walk() is not None or compiled_walk() is not None):
            return self._compiled_sums(X) / self.n_trees
        # summed chunk by chunk: the (rows, trees) leaf values never exist for the whole batch
        sums = self._chunks(X, lambda leaves: leaves.sum(axis=1))
        return (np.concatenate(sums) if sums else self.values[:0]) / self.n_trees

    def wants_compiled(self, n_rows: int) -> bool:
        """Whether ``n_rows`` rows walk compiled: always where the C walk is built; without it, when the batch is
        large enough to load numba, or numba is loaded already (a process that has scored a large batch answers its
        single rows compiled too), or the file asks for the compiled walk on every call (``compiled_always``)."""
        return (c_walk() is not None or self.compiled_always or n_rows * self.n_trees >= NUMBA_MIN_CELLS
                or bool(_WALK and _WALK[0] is not None))

    def _checked(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)  # scikit-learn trees see float32 inputs
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"the forest reads {self.n_features} features per row; got an array of shape {X.shape}.")
        return X

    def _chunks(self, X: np.ndarray, reduce) -> list[np.ndarray]:
        X = self._checked(X)
        rows_per_chunk = max(1, _BATCH_CELLS // max(self.n_trees, 1))
        chunks = [X[start:start + rows_per_chunk] for start in range(0, len(X), rows_per_chunk)]

        compiled = c_walk() is not None or len(X) * self.n_trees >= NUMBA_MIN_CELLS

        def walk(chunk: np.ndarray) -> np.ndarray:
            return reduce(self.values[self.leaf_rows(np.ascontiguousarray(chunk), compiled)])

        if len(chunks) <= 1:
            return [walk(chunk) for chunk in chunks]
        if not compiled:  # built once, before the threads (each would build its own copy)
            self._numpy_layout()
        # numpy releases the GIL in its array loops: a batch walks on every core, as the forest's own
        # predict does; one row stays on the calling thread
        with ThreadPoolExecutor(max_workers=min(len(chunks), _workers())) as pool:
            return list(pool.map(walk, chunks))

    def _compiled_sums(self, X: np.ndarray) -> np.ndarray:
        # a batch: one block of rows per core (the pickle's forest predicts on every core too), each walked tree by
        # tree (a tree's splits stay in cache while the block's rows go through it) and summed in the loop, so no
        # (rows, trees) matrix is ever built; one row stays on the calling thread
        walk, walk_sum = self._walks()
        values = self.values.reshape(len(self.values), -1)
        sums = np.zeros((len(X), values.shape[1]), dtype=np.float64)
        order = None
        X = np.ascontiguousarray(X)
        if len(X) > 1:
            # rows in the order of the first tree's prediction (leaf-value rows are sorted values): neighbours
            # then take the same ways down every tree, so branches are predicted and the splits they read are in
            # cache (15-25% faster on the diamonds forest); each row's sum is unchanged (still tree after tree)
            first = np.empty((len(X), 1), dtype=np.int64)
            walk(X, self.roots[:1], first)
            order = np.argsort(first[:, 0], kind="stable")
            X = X[order]
        size = -(-len(X) // _workers())
        blocks = [(start, min(start + size, len(X))) for start in range(0, len(X), size)]

        def walk_block(block: tuple[int, int]) -> None:
            start, stop = block
            walk_sum(X[start:stop], values, sums[start:stop])

        if len(blocks) <= 1:
            walk_block(blocks[0])
        else:  # both compiled walks run without the GIL: the threads walk in parallel
            with ThreadPoolExecutor(max_workers=len(blocks)) as pool:
                list(pool.map(walk_block, blocks))
        if order is not None:
            sums[order] = sums.copy()
        return sums if self.values.ndim > 1 else sums[:, 0]

    def _walks(self) -> tuple:
        """(walk(X, roots, out), walk_sum(X, values, out)) in C where built, else numba's."""
        arrays = (self.feature, self.split, self.left, self.right)
        c = c_walk()
        if c is not None:
            if not self._c_checked:  # every index once, so the C loops index without bounds checks
                c.check(*arrays, self.roots, self.thresholds, len(self.values), self.n_features)
                self._c_checked = True
            return (lambda X, roots, out: c.walk(X, *arrays, roots, self.thresholds, out),
                    lambda X, values, out: c.walk_sum(X, *arrays, self.roots, self.thresholds, values, out))
        numba_walks, shift = compiled_walk(), self.feature.dtype.itemsize * 8 - 3
        return (lambda X, roots, out: numba_walks.walk(X, *arrays, roots, self.thresholds, shift, out),
                lambda X, values, out: numba_walks.walk_sum(X, *arrays, self.roots, self.thresholds, values, shift,
                                                            out))

    def leaf_rows(self, X: np.ndarray, compiled: bool = True) -> np.ndarray:
        """Row of ``values`` each tree's leaf holds, for every row of the float32 matrix ``X``: (rows, trees);
        ``compiled=False`` walks in numpy even where C or numba is there (and never loads numba)."""
        if not compiled or (c_walk() is None and compiled_walk() is None):
            return self._leaf_rows_numpy(X)
        leaf_rows = np.empty((len(X), self.n_trees), dtype=np.int64)
        self._walks()[0](np.ascontiguousarray(X, dtype=np.float32), self.roots, leaf_rows)
        return leaf_rows

    def _numpy_layout(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Built at the first numpy walk, 12 bytes a split: each split's threshold as float32 rounded down (for every
        float32 value v, v <= t64 exactly when v <= the largest float32 not above t64, so the walk compares in float32
        with one gather a step instead of two and still decides every split as scikit-learn does), and where each
        way leads: the next split's index, or for a leaf ~(its leaf-value row) (negative). One step of the walk is
        then ~10 numpy calls instead of ~25 decoding the flags and offsets: a single row walks one call per tree level
        and pays each call's overhead, which dominated on TV16's deep trees (6.9 ms a row, 9x the pickle)."""
        if self._layout is None:
            down = self.thresholds.astype(np.float32)
            above = down.astype(np.float64) > self.thresholds
            down[above] = np.nextafter(down[above], np.float32(-np.inf))
            flag_shift = self.feature.dtype.itemsize * 8 - 3
            n_splits = len(self.feature)
            kind = np.int32 if max(n_splits, len(self.values)) < 2**31 - 1 else np.int64
            left_next, right_next = np.empty(n_splits, dtype=kind), np.empty(n_splits, dtype=kind)
            for start in range(0, n_splits, _BATCH_CELLS):  # in slices: int64 temporaries of the whole forest would
                part = slice(start, start + _BATCH_CELLS)     # raise the serving process's peak by ~40 bytes a split
                code = self.feature[part].astype(np.int64)
                index = np.arange(start, start + len(code), dtype=np.int64)
                left_next[part] = np.where((code >> flag_shift) & 1 == 1, ~self.left[part].astype(np.int64), index + 1)
                right_next[part] = np.where((code >> (flag_shift + 1)) & 1 == 1, ~self.right[part].astype(np.int64),
                                            index + self.right[part].astype(np.int64))
            self._layout = (down[self.split], left_next, right_next)
        return self._layout

    def _leaf_rows_numpy(self, X: np.ndarray) -> np.ndarray:
        # Every (row, tree) pair steps down together, one vectorized step per tree level; a pair
        # leaves the walk when it reaches a leaf, so deep trees cost only the pairs still inside them.
        # Pairs are ordered tree by tree, so neighbouring gathers read the same tree's splits.
        n_rows, n_trees = len(X), self.n_trees
        flag_shift = self.feature.dtype.itemsize * 8 - 3
        feature_mask = (1 << flag_shift) - 1
        with_missing = bool(np.isnan(X).any())
        (thresholds, left_next, right_next), feature = self._numpy_layout(), self.feature
        leaf_rows = np.empty(n_rows * n_trees, dtype=np.int64)
        pair = np.arange(n_rows * n_trees, dtype=np.int64)
        node = np.repeat(self.roots, n_rows)
        row_start = np.tile(np.arange(n_rows, dtype=np.int64) * X.shape[1], n_trees) if n_rows > 1 else None
        flat = np.ascontiguousarray(X, dtype=np.float32).ravel()
        while pair.size:
            code = feature.take(node)
            column = code & feature_mask
            value = flat.take(column if row_start is None else row_start + column)
            go_left = value <= thresholds.take(node)
            if with_missing:  # NaN compares False: it goes where the split's flag says
                go_left |= np.isnan(value) & ((code >> (flag_shift + 2)) & 1 == 1)
            node = np.where(go_left, left_next.take(node), right_next.take(node))
            at_leaf = node < 0
            if at_leaf.any():
                leaf_rows[pair[at_leaf]] = ~node[at_leaf]
                inside = ~at_leaf
                pair, node = pair[inside], node[inside]
                if row_start is not None:
                    row_start = row_start[inside]
        return leaf_rows.reshape(n_trees, n_rows).T


_WALK: list = []  # the compiled walks once built ([_Walks] or [None] without numba)
_C: list = []     # the C module once imported ([module] or [None] where it was not built)


def c_walk():
    """The C walk (``mlhelpers.tools._forest_walk``, built at install), or None where it is missing (sources copied
    without building, e.g. a model folder's code) or ``MLH_COMPACT_WALK=fallback`` / ``MLH_COMPACT_NUMPY=1`` asks
    for the walks used without it (numpy, numba for large batches); read at each call, so a test can switch."""
    if os.environ.get("MLH_COMPACT_WALK") == "fallback" or os.environ.get("MLH_COMPACT_NUMPY") == "1":
        return None
    if not _C:
        try:
            _C.append(importlib.import_module("mlhelpers.tools._forest_walk"))
        except ImportError:
            _C.append(None)
    return _C[0]


@dataclass
class _Walks:
    walk: object       # leaf rows of every (row, tree)
    walk_sum: object   # each row's sum of its trees' leaf values


def describe_walk() -> str:
    """Which walk a compact model takes in this process, for reports: where a model is served without the C module
    (not built there), it walks the fallback, same leaves, slower batches."""
    if c_walk() is not None:
        return "c: mlhelpers.tools._forest_walk, every call"
    if os.environ.get("MLH_COMPACT_NUMPY") == "1":
        return "fallback: numpy only (MLH_COMPACT_NUMPY=1)"
    return (f"fallback (the C walk is not built here): numpy, numba from {NUMBA_MIN_CELLS:,} (row, tree) cells "
            "when installed; same leaves, slower batches")


def compiled_walk() -> _Walks | None:
    """The tree walks compiled by numba (one loop per row and tree, no GIL), or None where numba is missing or
    ``MLH_COMPACT_NUMPY=1``. numba is imported on the first call, which ``predict_values`` makes only for a batch of
    ``NUMBA_MIN_CELLS`` (row, tree) cells or more.

    Why compiled: numpy's level-by-level walk makes ~15 passes over the (row, tree) pairs per tree level,
    which left large batches at 0.3-0.55x scikit-learn's compiled walk on deep forests (diamonds); this
    walks each pair to its leaf in one loop. numba is already installed with ydata-profiling. Its cost, paid
    once per process at the first large batch: ~133 MB of memory (68 importing numba, 65 for LLVM and the machine
    code read from numba's cache) and ~1-3 s (`/work/scratch/forest15b/numba_mem.py`). ``MLH_COMPACT_NUMPY=1``
    forces the numpy walk where that memory matters more than batch speed.
    """
    if not _WALK:
        _WALK.append(None if os.environ.get("MLH_COMPACT_NUMPY") == "1" else _build_walk())
    return _WALK[0]


def compact_runtime() -> tuple[str, ...]:
    """The modules a compact model's serving process imports whatever the model (its memory floor): none beyond
    numpy and pandas. onnxruntime comes with the model only when its preprocessing is an ONNX graph, numba only
    with the first large batch."""
    return ()


def _build_walk() -> _Walks | None:
    try:
        import numba
    except ImportError:
        return None

    def descend(X, row, node, feature, split, left, right, thresholds, flag_shift):  # pragma: no cover (compiled)
        """The leaf reference one row reaches from ``node``."""
        feature_mask = (1 << flag_shift) - 1
        while True:
            code = np.int64(feature[node])
            value = X[row, code & feature_mask]
            # float32 value against the float64 threshold, compared in float64 as scikit-learn does;
            # NaN compares False and goes where the split's flag says
            if value <= thresholds[split[node]]:
                go_left = True
            elif np.isnan(value):
                go_left = (code >> (flag_shift + 2)) & 1 == 1
            else:
                go_left = False
            if go_left:
                if (code >> flag_shift) & 1 == 1:
                    return np.int64(left[node])
                node += 1
            else:
                if (code >> (flag_shift + 1)) & 1 == 1:
                    return np.int64(right[node])
                node += np.int64(right[node])

    def walk(X, feature, split, left, right, roots, thresholds, flag_shift, out):  # pragma: no cover (compiled)
        # tree by tree, every row through it: one tree's splits stay in cache while the rows walk it
        for tree in range(roots.shape[0]):
            for row in range(X.shape[0]):
                out[row, tree] = descend(X, row, roots[tree], feature, split, left, right, thresholds, flag_shift)

    def walk_sum(X, feature, split, left, right, roots, thresholds, values, flag_shift, out):  # pragma: no cover
        # summed in tree order, as scikit-learn's forests accumulate their trees, so no (rows, trees) matrix
        for tree in range(roots.shape[0]):
            for row in range(X.shape[0]):
                leaf = descend(X, row, roots[tree], feature, split, left, right, thresholds, flag_shift)
                for k in range(values.shape[1]):
                    out[row, k] += values[leaf, k]

    try:  # machine code cached next to this module (or in the user's cache folder): ~1 s instead of ~5 s
        jit = numba.njit(nogil=True, cache=True)
        descend = jit(descend)
        return _Walks(jit(walk), jit(walk_sum))
    except RuntimeError:  # no writable cache folder anywhere: compiled in each process instead
        jit = numba.njit(nogil=True)
        descend = jit(descend)
        return _Walks(jit(walk), jit(walk_sum))
