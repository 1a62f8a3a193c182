/* The compact forest's compiled tree walk (mlhelpers.tools.forest_walk): each (row, tree) pair walked to its leaf
 * in one loop, without the GIL, on the compact arrays themselves (no copy, no extra bytes a split).
 *
 * Hand-written in C because every library that walks trees compiled costs what the serving goals cannot pay:
 * numba ~130 MB of memory per process (LLVM and its machine code; TV16's bound leaves 48 MB above the 108 MB
 * floor), onnxruntime ~150 bytes a split (328 MB for TV16's 887k splits), treelite a C compiler on the serving
 * machine at load. This module is ~50 kB loaded and built once at install (setup.py); where it is missing
 * (sources copied without building, e.g. MLflow's code_paths) forest_walk falls back to its numpy/numba walks,
 * which reach the same leaves.
 *
 * Layout (see mlhelpers.tools.compact): per split, `feature` (uint8/16/32) holds the feature index with three flags
 * in its top bits (left child is a leaf, right child is a leaf, NaN goes left), `split` (uint16/32) indexes
 * `thresholds` (float64), `left`/`right` (uint16/32) hold a leaf child's row in `values` (float64, rows x outputs),
 * else for the right child its offset (the left child is the next split: preorder). A float32 input is compared
 * in double against the float64 threshold, as scikit-learn does; NaN compares false and goes where its flag says.
 *
 * check() validates every index once per forest (a damaged file must not read outside the arrays; every internal
 * child lies after its parent, so each walk ends), after which the walks index without bounds checks.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    Py_buffer feature, split, left, right, roots, thresholds;
    int flag_shift;
} Forest;

static inline uint64_t get_unsigned(const Py_buffer *b, Py_ssize_t i) {
    switch (b->itemsize) {
        case 1: return ((const uint8_t *)b->buf)[i];
        case 2: return ((const uint16_t *)b->buf)[i];
        case 4: return ((const uint32_t *)b->buf)[i];
        default: return ((const uint64_t *)b->buf)[i];
    }
}

static void release(Py_buffer *views, int n) {
    for (int i = 0; i < n; i++)
        if (views[i].obj != NULL) PyBuffer_Release(&views[i]);
}

/* a contiguous buffer of the given item size (0: any of 1/2/4/8) and, when kind is given, format kind */
static int get_view(PyObject *obj, Py_buffer *view, int writable, Py_ssize_t itemsize, char kind, const char *name) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) return -1;
    char code = view->format ? view->format[strspn(view->format, "@=<>!")] : 'B';
    int ok = itemsize ? view->itemsize == itemsize
                      : (view->itemsize == 1 || view->itemsize == 2 || view->itemsize == 4 || view->itemsize == 8);
    if (kind == 'f') ok = ok && (code == 'f' || code == 'd');
    else if (kind == 'u') ok = ok && strchr("BHILQ", code) != NULL;
    else if (kind == 'i') ok = ok && strchr("lq", code) != NULL;
    if (!ok) {
        PyErr_Format(PyExc_TypeError, "_forest_walk: %s has items of %zd bytes, format %s", name, view->itemsize,
                     view->format ? view->format : "?");
        PyBuffer_Release(view);
        view->obj = NULL;
        return -1;
    }
    return 0;
}

static int get_forest(PyObject *const *args, Forest *f) {
    memset(f, 0, sizeof(*f));
    Py_buffer *views = &f->feature;
    const char *names[] = {"feature", "split", "left", "right", "roots", "thresholds"};
    const Py_ssize_t sizes[] = {0, 0, 0, 0, 8, 8};
    const char kinds[] = {'u', 'u', 'u', 'u', 'i', 'f'};
    for (int i = 0; i < 6; i++) {
        if (get_view(args[i], &views[i], 0, sizes[i], kinds[i], names[i]) < 0) {
            release(views, i);
            return -1;
        }
    }
    f->flag_shift = (int)f->feature.itemsize * 8 - 3;
    return 0;
}

static void release_forest(Forest *f) { release(&f->feature, 6); }

/* the row of `values` one row's walk reaches from the split `node`, one function for each width of the feature,
 * split and child arrays (compiled per type: reading through a run-time width halved the one-row speed) */
#define DESCEND(NAME, FT, ST, LT, RT)                                                                          \
    static Py_ssize_t NAME(const Forest *f, const float *x, Py_ssize_t node) {                               \
        const int shift = f->flag_shift;                                                                       \
        const uint64_t mask = ((uint64_t)1 << shift) - 1;                                                      \
        const double *thresholds = (const double *)f->thresholds.buf;                                          \
        const FT *feature = (const FT *)f->feature.buf;                                                        \
        const ST *split = (const ST *)f->split.buf;                                                            \
        const LT *left = (const LT *)f->left.buf;                                                              \
        const RT *right = (const RT *)f->right.buf;                                                            \
        for (;;) {                                                                                             \
            uint64_t code = feature[node];                                                                     \
            double value = (double)x[code & mask];                                                             \
            int go_left;                                                                                       \
            if (value <= thresholds[split[node]]) go_left = 1;                                                 \
            else if (isnan(value)) go_left = (int)((code >> (shift + 2)) & 1);                                \
            else go_left = 0;                                                                                  \
            if (go_left) {                                                                                     \
                if ((code >> shift) & 1) return (Py_ssize_t)left[node];                                        \
                node += 1;                                                                                     \
            } else {                                                                                           \
                if ((code >> (shift + 1)) & 1) return (Py_ssize_t)right[node];                                 \
                node += (Py_ssize_t)right[node];                                                               \
            }                                                                                                  \
        }                                                                                                      \
    }

typedef Py_ssize_t (*Descend)(const Forest *, const float *, Py_ssize_t);

#define FOR_SPLIT(F, FT)                                                                                       \
    DESCEND(d_##F##_16_16, FT, uint16_t, uint16_t, uint16_t)                                                   \
    DESCEND(d_##F##_16_32, FT, uint16_t, uint32_t, uint32_t)                                                   \
    DESCEND(d_##F##_32_16, FT, uint32_t, uint16_t, uint16_t)                                                   \
    DESCEND(d_##F##_32_32, FT, uint32_t, uint32_t, uint32_t)
FOR_SPLIT(8, uint8_t)
FOR_SPLIT(16, uint16_t)
FOR_SPLIT(32, uint32_t)

static Py_ssize_t d_generic(const Forest *f, const float *x, Py_ssize_t node) {
    /* any other widths (and left/right of different widths): read through the run-time width */
    const int shift = f->flag_shift;
    const uint64_t mask = ((uint64_t)1 << shift) - 1;
    const double *thresholds = (const double *)f->thresholds.buf;
    for (;;) {
        uint64_t code = get_unsigned(&f->feature, node);
        double value = (double)x[code & mask];
        int go_left;
        if (value <= thresholds[get_unsigned(&f->split, node)]) go_left = 1;
        else if (isnan(value)) go_left = (int)((code >> (shift + 2)) & 1);
        else go_left = 0;
        if (go_left) {
            if ((code >> shift) & 1) return (Py_ssize_t)get_unsigned(&f->left, node);
            node += 1;
        } else {
            if ((code >> (shift + 1)) & 1) return (Py_ssize_t)get_unsigned(&f->right, node);
            node += (Py_ssize_t)get_unsigned(&f->right, node);
        }
    }
}

static Descend pick_descend(const Forest *f) {
    static const Descend table[3][2][2] = {
        {{d_8_16_16, d_8_16_32}, {d_8_32_16, d_8_32_32}},
        {{d_16_16_16, d_16_16_32}, {d_16_32_16, d_16_32_32}},
        {{d_32_16_16, d_32_16_32}, {d_32_32_16, d_32_32_32}},
    };
    Py_ssize_t fs = f->feature.itemsize, ss = f->split.itemsize, ls = f->left.itemsize, rs = f->right.itemsize;
    int fi = fs == 1 ? 0 : fs == 2 ? 1 : fs == 4 ? 2 : -1;
    int si = ss == 2 ? 0 : ss == 4 ? 1 : -1;
    int ri = ls != rs ? -1 : ls == 2 ? 0 : ls == 4 ? 1 : -1;
    return (fi < 0 || si < 0 || ri < 0) ? d_generic : table[fi][si][ri];
}

/* check(feature, split, left, right, roots, thresholds, n_values, n_features): None, or ValueError naming the
 * first index out of range */
static PyObject *check(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 8) return PyErr_Format(PyExc_TypeError, "check takes 8 arguments, got %zd", nargs);
    Py_ssize_t n_values = PyLong_AsSsize_t(args[6]), n_features = PyLong_AsSsize_t(args[7]);
    if (PyErr_Occurred()) return NULL;
    Forest f;
    if (get_forest(args, &f) < 0) return NULL;
    Py_ssize_t n = f.feature.len / f.feature.itemsize, n_thresholds = f.thresholds.len / 8;
    const char *problem = NULL;
    Py_ssize_t at = 0;
    if (f.split.len / f.split.itemsize != n || f.left.len / f.left.itemsize != n || f.right.len / f.right.itemsize != n)
        problem = "per-split arrays of different lengths";
    const int shift = f.flag_shift;
    const uint64_t mask = ((uint64_t)1 << shift) - 1;
    for (Py_ssize_t i = 0; problem == NULL && i < n; i++) {
        uint64_t code = get_unsigned(&f.feature, i);
        at = i;
        if ((Py_ssize_t)(code & mask) >= n_features) problem = "feature index";
        else if ((Py_ssize_t)get_unsigned(&f.split, i) >= n_thresholds) problem = "threshold index";
        else if ((code >> shift) & 1 ? (Py_ssize_t)get_unsigned(&f.left, i) >= n_values : i + 1 >= n)
            problem = "left child";
        else if ((code >> (shift + 1)) & 1 ? (Py_ssize_t)get_unsigned(&f.right, i) >= n_values
                 : (get_unsigned(&f.right, i) == 0 || i + (Py_ssize_t)get_unsigned(&f.right, i) >= n))
            problem = "right child";
    }
    const int64_t *roots = (const int64_t *)f.roots.buf;
    for (Py_ssize_t t = 0; problem == NULL && t < f.roots.len / 8; t++)
        if (roots[t] < 0 || roots[t] >= n) { problem = "tree root"; at = t; }
    release_forest(&f);
    if (problem)
        return PyErr_Format(PyExc_ValueError, "the compact forest is damaged: %s out of range at %s %zd; write the "
                            "file again with `mlh optimize` on the original model", problem,
                            strcmp(problem, "tree root") ? "split" : "tree", at);
    Py_RETURN_NONE;
}

static int get_rows(PyObject *obj, Py_buffer *X, Py_ssize_t *n_rows, Py_ssize_t *n_cols) {
    if (get_view(obj, X, 0, 4, 'f', "X") < 0) return -1;
    if (X->ndim != 2) {
        PyErr_SetString(PyExc_ValueError, "_forest_walk: X must be a 2-d float32 array");
        PyBuffer_Release(X);
        return -1;
    }
    *n_rows = X->shape[0];
    *n_cols = X->shape[1];
    return 0;
}

/* walk(X, feature, split, left, right, roots, thresholds, out): out[row, tree] = the row of `values` the tree's
 * leaf holds (int64, rows x trees) */
static PyObject *walk(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 8) return PyErr_Format(PyExc_TypeError, "walk takes 8 arguments, got %zd", nargs);
    Py_buffer X, out;
    Py_ssize_t n_rows, n_cols;
    Forest f;
    if (get_rows(args[0], &X, &n_rows, &n_cols) < 0) return NULL;
    if (get_forest(args + 1, &f) < 0) { PyBuffer_Release(&X); return NULL; }
    Py_ssize_t n_trees = f.roots.len / 8;
    if (get_view(args[7], &out, 1, 8, 'i', "out") < 0) { release_forest(&f); PyBuffer_Release(&X); return NULL; }
    if (out.len / 8 != n_rows * n_trees) {
        PyErr_SetString(PyExc_ValueError, "_forest_walk: out must hold rows x trees int64");
        PyBuffer_Release(&out); release_forest(&f); PyBuffer_Release(&X);
        return NULL;
    }
    const float *x = (const float *)X.buf;
    const int64_t *roots = (const int64_t *)f.roots.buf;
    int64_t *leaves = (int64_t *)out.buf;
    Descend descend = pick_descend(&f);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t t = 0; t < n_trees; t++)  /* tree by tree: one tree's splits stay in cache */
        for (Py_ssize_t r = 0; r < n_rows; r++)
            leaves[r * n_trees + t] = descend(&f, x + r * n_cols, roots[t]);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&out); release_forest(&f); PyBuffer_Release(&X);
    Py_RETURN_NONE;
}

/* walk_sum(X, feature, split, left, right, roots, thresholds, values, out): out[row, :] += each tree's leaf
 * values in tree order (as scikit-learn's forests accumulate), float64 rows x outputs; no rows x trees matrix */
static PyObject *walk_sum(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 9) return PyErr_Format(PyExc_TypeError, "walk_sum takes 9 arguments, got %zd", nargs);
    Py_buffer X, values, out;
    Py_ssize_t n_rows, n_cols;
    Forest f;
    if (get_rows(args[0], &X, &n_rows, &n_cols) < 0) return NULL;
    if (get_forest(args + 1, &f) < 0) { PyBuffer_Release(&X); return NULL; }
    if (get_view(args[7], &values, 0, 8, 'f', "values") < 0) { release_forest(&f); PyBuffer_Release(&X); return NULL; }
    if (get_view(args[8], &out, 1, 8, 'f', "out") < 0) {
        PyBuffer_Release(&values); release_forest(&f); PyBuffer_Release(&X);
        return NULL;
    }
    Py_ssize_t n_outputs = values.ndim == 2 ? values.shape[1] : 1, n_trees = f.roots.len / 8;
    if (n_outputs < 1 || out.len / 8 != n_rows * n_outputs) {
        PyErr_SetString(PyExc_ValueError, "_forest_walk: out must hold rows x outputs float64");
        PyBuffer_Release(&out); PyBuffer_Release(&values); release_forest(&f); PyBuffer_Release(&X);
        return NULL;
    }
    const float *x = (const float *)X.buf;
    const double *v = (const double *)values.buf;
    const int64_t *roots = (const int64_t *)f.roots.buf;
    double *sums = (double *)out.buf;
    Descend descend = pick_descend(&f);
    /* rows in groups whose features fit in L2 (256 kB), each group walked tree by tree: narrow rows (hundreds of
     * features) make one group of the whole block, so a tree's splits stay in cache while every row goes through
     * it; wide one-hot rows (pizzaplace: 11k features, 44 kB a row) would otherwise miss the cache at every step
     * reading a row's feature (2,000 rows walked at 0.4x the pickle on one core) */
    Py_ssize_t group = n_cols > 0 ? (256 * 1024) / (n_cols * (Py_ssize_t)sizeof(float)) : n_rows;
    if (group < 1) group = 1;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t start = 0; start < n_rows; start += group) {
        Py_ssize_t stop = start + group < n_rows ? start + group : n_rows;
        for (Py_ssize_t t = 0; t < n_trees; t++)
            for (Py_ssize_t r = start; r < stop; r++) {
                const double *leaf = v + descend(&f, x + r * n_cols, roots[t]) * n_outputs;
                double *row = sums + r * n_outputs;
                for (Py_ssize_t k = 0; k < n_outputs; k++) row[k] += leaf[k];
            }
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&out); PyBuffer_Release(&values); release_forest(&f); PyBuffer_Release(&X);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"check", (PyCFunction)(void (*)(void))check, METH_FASTCALL, "Validate every index of a compact forest."},
    {"walk", (PyCFunction)(void (*)(void))walk, METH_FASTCALL, "Leaf rows of every (row, tree)."},
    {"walk_sum", (PyCFunction)(void (*)(void))walk_sum, METH_FASTCALL, "Each row's sum of its trees' leaf values."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_forest_walk", NULL, -1, methods};

PyMODINIT_FUNC PyInit__forest_walk(void) { return PyModule_Create(&module); }
