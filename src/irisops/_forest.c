/*
 * irisops._forest: class probabilities of a random forest from flattened node arrays.
 *
 * A Forest is built once from plain arrays (buffer protocol: numpy arrays, bytes,
 * array.array) and is immutable afterwards, so any number of threads may call it at
 * once. It evaluates exactly as scikit-learn's RandomForestClassifier.predict_proba:
 * each float32 feature is widened to double and compared `<=` with the node's float64
 * threshold; the leaves' probability rows are summed in double, in tree order, divided
 * by the number of trees, and the result is written as float32.
 *
 * Arrays (n = nodes of all trees, laid end to end; t = trees; c = classes):
 *   feature   int32[n]    feature tested at an internal node (ignored at a leaf)
 *   threshold float64[n]  go left when x[feature] <= threshold
 *   left      int32[n]    left child (index into the same arrays), -1 at a leaf
 *   right     int32[n]    right child, -1 at a leaf
 *   value     float64[n*c] per node, the class probabilities (read at leaves only)
 *   roots     int32[t]    the first node of each tree: roots[0] == 0, rising; tree k is
 *                         nodes roots[k] .. roots[k+1]-1 (the last tree ends at n)
 *
 * Everything is checked here, once, before any walk: every child index lies past its
 * parent and inside its own tree, no node has two parents, every tested feature exists.
 * So every path from a root ends at a leaf within a bounded number of steps, and no
 * input can make a walk read outside the arrays. The data is copied into a packed node
 * table, each tree breadth first, so that a node's two children sit side by side.
 *
 * Batches go BLOCK rows at a time, with no branch that depends on a row. A tree of at
 * most MASK_LEAVES leaves is evaluated as bit masks (build_masks): every test of the tree
 * runs on the whole block, four float32 rows an SSE2 instruction, and each row's leaf is
 * the lowest bit left standing. The float32 comparison is exact: for a float32 x,
 * x <= t (t a float64 threshold) holds exactly when x <= the largest float32 <= t. A
 * larger tree is walked for a fixed number of steps (its depth): in the packed table a
 * leaf is its own child (it tests a slot that is always 0.0 against +infinity), so a row
 * that reached its leaf stays there, and the block's independent walks overlap in the
 * CPU. A single row (and a batch's last few) walks each tree to its leaf and stops. All
 * reach the same leaves and add them up in the same order, so a row gets the same bits
 * whichever way it went.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* From this many rows a batch runs without the GIL (below, the hand-off costs more). */
#define NOGIL_ROWS 16
/* Rows that walk each tree together. */
#define BLOCK 32
/* Features and classes whose block buffers live on the stack (more: on the heap). */
#define STACK_WIDTH 16
/* A tree with up to this many leaves is evaluated as bit masks, one bit a leaf. */
#define MASK_LEAVES 32
/* Features and classes a walk keeps on the stack; models with more are refused. */
#define MAX_FEATURES 4096
#define MAX_CLASSES 4096

/* 16 bytes. The children are next to each other: left, then right at left + 1. A leaf
 * tests the row's extra last slot (always 0.0) against +infinity, and is its own left
 * child, so it stays where it is. */
typedef struct {
    double threshold;
    int32_t feature;
    int32_t left; /* x[feature] <= threshold: left, else left + 1 */
} Node;

typedef struct {
    PyObject_HEAD
    Node *nodes;
    double *values;  /* n_leaves rows of n_classes */
    int32_t *leaf_of; /* per node, its row in the value table; -1 at an internal node */
    int32_t *roots;
    int32_t *depths; /* steps from each tree's root to its deepest leaf */
    /* Trees of at most MASK_LEAVES leaves, as bit masks (see predict_block); per tree, its
     * first test and leaf in the arrays below, or first_leaf -1 for a tree walked instead. */
    int32_t *first_test, *tests, *first_leaf;
    float *test_threshold; /* the largest float32 <= the node's float64 threshold */
    int32_t *test_feature;
    uint32_t *test_mask; /* the leaves left standing when the test fails (go right) */
    int32_t *leaf_row;   /* a masked tree's leaves from left to right: their value rows */
    Py_ssize_t n_nodes;
    Py_ssize_t n_trees;
    Py_ssize_t n_features;
    Py_ssize_t n_classes;
} Forest;

static int
get_vector(PyObject *obj, Py_buffer *view, const char *name, char kind, Py_ssize_t itemsize)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        return -1;
    }
    const char *format = view->format ? view->format : "B";
    if (format[0] == '<' || format[0] == '=' || format[0] == '@') {
        format++;
    }
    int ok = view->itemsize == itemsize && format[1] == '\0' &&
             (kind == 'i' ? (format[0] == 'i' || format[0] == 'l') : format[0] == 'd');
    if (!ok) {
        PyErr_Format(PyExc_ValueError, "%s must be %s (got format '%s', %zd bytes an item)",
                     name, kind == 'i' ? "int32" : "float64", view->format ? view->format : "B",
                     view->itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static void
Forest_dealloc(Forest *self)
{
    PyMem_Free(self->nodes);
    PyMem_Free(self->values);
    PyMem_Free(self->roots);
    PyMem_Free(self->depths);
    PyMem_Free(self->leaf_of);
    PyMem_Free(self->first_test);
    PyMem_Free(self->tests);
    PyMem_Free(self->first_leaf);
    PyMem_Free(self->test_threshold);
    PyMem_Free(self->test_feature);
    PyMem_Free(self->test_mask);
    PyMem_Free(self->leaf_row);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/*
 * The bit masks of every tree with at most MASK_LEAVES leaves (QuickScorer, Lucchese et
 * al., SIGIR 2015). Number a tree's leaves from left to right; a test that fails (the
 * row goes right) rules out every leaf of its left subtree, and the row's leaf is the
 * leftmost one no failed test ruled out. So a row's leaf is found by AND-ing the masks
 * of its failed tests, in any order, with no walk from node to node. Built from the
 * packed table, where each tree's reached nodes are roots[t] .. ends[t]-1, breadth first.
 */
/* For a float32 x, x <= t exactly when x <= float_at_most(t): the same test in float32. */
static float
float_at_most(double t)
{
    float at_most = (float)t;
    return (double)at_most > t ? nextafterf(at_most, -INFINITY) : at_most;
}

static int
build_masks(Forest *self, const int32_t *roots, const int32_t *ends, Py_ssize_t n,
            Py_ssize_t n_trees)
{
    int32_t *leaves = PyMem_Calloc((size_t)n, sizeof(int32_t)); /* in each subtree */
    int32_t *start = PyMem_Calloc((size_t)n, sizeof(int32_t));  /* its leftmost leaf */
    self->first_test = PyMem_Calloc((size_t)n_trees, sizeof(int32_t));
    self->tests = PyMem_Calloc((size_t)n_trees, sizeof(int32_t));
    self->first_leaf = PyMem_Calloc((size_t)n_trees, sizeof(int32_t));
    self->test_threshold = PyMem_Calloc((size_t)n, sizeof(float));
    self->test_feature = PyMem_Calloc((size_t)n, sizeof(int32_t));
    self->test_mask = PyMem_Calloc((size_t)n, sizeof(uint32_t));
    self->leaf_row = PyMem_Calloc((size_t)n, sizeof(int32_t));
    if (!leaves || !start || !self->first_test || !self->tests || !self->first_leaf ||
        !self->test_threshold || !self->test_feature || !self->test_mask || !self->leaf_row) {
        PyMem_Free(leaves);
        PyMem_Free(start);
        PyErr_NoMemory();
        return -1;
    }
    const Node *nodes = self->nodes;
    int32_t n_tests = 0, n_leaf_rows = 0;
    for (Py_ssize_t t = 0; t < n_trees; t++) {
        const int32_t root = roots[t], end = ends[root];
        for (int32_t i = end - 1; i >= root; i--) { /* children come after their parent */
            leaves[i] = self->leaf_of[i] >= 0 ? 1 : leaves[nodes[i].left] + leaves[nodes[i].left + 1];
        }
        self->first_leaf[t] = -1;
        if (leaves[root] > MASK_LEAVES) {
            continue;
        }
        self->first_test[t] = n_tests;
        self->first_leaf[t] = n_leaf_rows;
        start[root] = 0;
        for (int32_t i = root; i < end; i++) {
            if (self->leaf_of[i] >= 0) {
                self->leaf_row[n_leaf_rows + start[i]] = self->leaf_of[i];
                continue;
            }
            int32_t left = nodes[i].left, left_leaves = leaves[left]; /* < MASK_LEAVES */
            start[left] = start[i];
            start[left + 1] = start[i] + left_leaves;
            self->test_threshold[n_tests] = float_at_most(nodes[i].threshold);
            self->test_feature[n_tests] = nodes[i].feature;
            self->test_mask[n_tests] = ~((((uint32_t)1 << left_leaves) - 1) << start[i]);
            n_tests++;
        }
        self->tests[t] = n_tests - self->first_test[t];
        n_leaf_rows += leaves[root];
    }
    PyMem_Free(leaves);
    PyMem_Free(start);
    return 0;
}

static int
build(Forest *self, Py_buffer *b, Py_ssize_t n_features, Py_ssize_t n_classes)
{
    /* b: feature, threshold, left, right, value, roots */
    Py_ssize_t n = b[0].len / 4;
    if (b[1].len / 8 != n || b[2].len / 4 != n || b[3].len / 4 != n) {
        PyErr_SetString(PyExc_ValueError, "feature, threshold, left and right differ in length");
        return -1;
    }
    if (n < 1 || n > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "a forest needs at least one node");
        return -1;
    }
    if (n_features < 1 || n_features > MAX_FEATURES || n_classes < 1 || n_classes > MAX_CLASSES) {
        PyErr_Format(PyExc_ValueError, "n_features and n_classes must be in 1..%d", MAX_FEATURES);
        return -1;
    }
    if (b[4].len / 8 != n * n_classes) {
        PyErr_Format(PyExc_ValueError, "value must hold %zd x %zd float64", n, n_classes);
        return -1;
    }
    Py_ssize_t n_trees = b[5].len / 4;
    if (n_trees < 1) {
        PyErr_SetString(PyExc_ValueError, "a forest needs at least one tree");
        return -1;
    }
    const int32_t *feature = b[0].buf, *left = b[2].buf, *right = b[3].buf, *roots = b[5].buf;
    const double *threshold = b[1].buf, *value = b[4].buf;
    if (roots[0] != 0) {
        PyErr_SetString(PyExc_ValueError, "the first tree must start at node 0");
        return -1;
    }
    for (Py_ssize_t t = 1; t < n_trees; t++) {
        if (roots[t] <= roots[t - 1] || roots[t] >= n) {
            PyErr_Format(PyExc_ValueError, "tree %zd starts at node %d: roots must rise, < %zd",
                         t, roots[t], n);
            return -1;
        }
    }
    Py_ssize_t n_leaves = 0;
    for (Py_ssize_t t = 0; t < n_trees; t++) {
        Py_ssize_t end = t + 1 < n_trees ? roots[t + 1] : n;
        for (Py_ssize_t i = roots[t]; i < end; i++) {
            if (left[i] == -1 && right[i] == -1) {
                n_leaves++;
                continue;
            }
            if (left[i] <= i || left[i] >= end || right[i] <= i || right[i] >= end) {
                PyErr_Format(PyExc_ValueError,
                             "node %zd has children %d and %d: each must be a later node of "
                             "its tree, < %zd",
                             i, left[i], right[i], end);
                return -1;
            }
            if (feature[i] < 0 || feature[i] >= n_features) {
                PyErr_Format(PyExc_ValueError, "node %zd tests feature %d of %zd", i, feature[i],
                             n_features);
                return -1;
            }
        }
    }
    self->nodes = PyMem_Calloc((size_t)n, sizeof(Node));
    self->values = PyMem_Calloc((size_t)(n_leaves * n_classes), sizeof(double));
    self->roots = PyMem_Calloc((size_t)n_trees, sizeof(int32_t));
    self->depths = PyMem_Calloc((size_t)n_trees, sizeof(int32_t));
    self->leaf_of = PyMem_Calloc((size_t)n, sizeof(int32_t));
    int32_t *depth = PyMem_Calloc((size_t)n, sizeof(int32_t));
    int32_t *queue = PyMem_Calloc((size_t)n, sizeof(int32_t));
    char *seen = PyMem_Calloc((size_t)n, 1);
    if (!self->nodes || !self->values || !self->roots || !self->depths || !self->leaf_of ||
        !depth || !queue || !seen) {
        PyMem_Free(depth);
        PyMem_Free(queue);
        PyMem_Free(seen);
        PyErr_NoMemory();
        return -1;
    }
    /* Each tree is laid out again breadth first from its root, in its own index range:
     * a node's children get consecutive places. A node reached twice (two parents) is
     * refused, so the layout never outgrows the range; nodes nothing reaches are dropped. */
    int32_t leaf = 0;
    int failed = 0;
    for (Py_ssize_t t = 0; t < n_trees && !failed; t++) {
        Py_ssize_t end = t + 1 < n_trees ? roots[t + 1] : n;
        Py_ssize_t head = roots[t], tail = roots[t];
        int32_t deepest = 0;
        queue[tail++] = roots[t];
        seen[roots[t]] = 1;
        for (Py_ssize_t i = roots[t]; i < end; i++) { /* unreached places: inert leaves */
            self->nodes[i] = (Node){INFINITY, (int32_t)n_features, (int32_t)i};
            self->leaf_of[i] = -1;
        }
        while (head < tail) {
            Py_ssize_t at = head++, o = queue[at];
            Node *node = &self->nodes[at];
            deepest = depth[at] > deepest ? depth[at] : deepest;
            if (left[o] == -1) {
                *node = (Node){INFINITY, (int32_t)n_features, (int32_t)at};
                self->leaf_of[at] = leaf;
                memcpy(&self->values[(Py_ssize_t)leaf * n_classes], &value[o * n_classes],
                       (size_t)n_classes * sizeof(double));
                leaf++;
                continue;
            }
            if (seen[left[o]] || seen[right[o]] || left[o] == right[o]) {
                PyErr_Format(PyExc_ValueError, "node %zd has a child that another node has too",
                             o);
                failed = 1;
                break;
            }
            seen[left[o]] = seen[right[o]] = 1;
            *node = (Node){threshold[o], feature[o], (int32_t)tail};
            depth[tail] = depth[at] + 1;
            queue[tail++] = left[o];
            depth[tail] = depth[at] + 1;
            queue[tail++] = right[o];
        }
        self->depths[t] = deepest;
        depth[roots[t]] = (int32_t)tail; /* the root's depth is 0: its slot now keeps the end */
    }
    if (!failed) {
        failed = build_masks(self, roots, depth, n, n_trees);
    }
    PyMem_Free(depth);
    PyMem_Free(queue);
    PyMem_Free(seen);
    if (failed) {
        return -1;
    }
    memcpy(self->roots, roots, (size_t)n_trees * sizeof(int32_t));
    self->n_nodes = n;
    self->n_trees = n_trees;
    self->n_features = n_features;
    self->n_classes = n_classes;
    return 0;
}

static PyObject *
Forest_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"feature", "threshold", "left", "right", "value",
                               "roots", "n_features", "n_classes", NULL};
    PyObject *arrays[6];
    Py_ssize_t n_features, n_classes;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOOOnn:Forest", keywords, &arrays[0],
                                     &arrays[1], &arrays[2], &arrays[3], &arrays[4], &arrays[5],
                                     &n_features, &n_classes)) {
        return NULL;
    }
    static const char *names[] = {"feature", "threshold", "left", "right", "value", "roots"};
    static const char kinds[] = {'i', 'd', 'i', 'i', 'd', 'i'};
    Py_buffer views[6];
    int got = 0;
    Forest *self = NULL;
    for (; got < 6; got++) {
        if (get_vector(arrays[got], &views[got], names[got], kinds[got],
                       kinds[got] == 'i' ? 4 : 8) < 0) {
            goto done;
        }
    }
    self = (Forest *)type->tp_alloc(type, 0);
    if (self != NULL && build(self, views, n_features, n_classes) < 0) {
        Py_CLEAR(self);
    }
done:
    for (int i = 0; i < got; i++) {
        PyBuffer_Release(&views[i]);
    }
    return (PyObject *)self;
}

/*
 * Up to BLOCK rows (x: their features widened to double, row after row) down every
 * tree, in tree order; each row's leaf probabilities summed in double, then divided by
 * the number of trees and written as float32. The same additions in the same order as
 * scikit-learn's predict_proba, whatever the block a row is in.
 */
/*
 * Each row's leaf in tree t, as a value row: the leftmost leaf no failed test ruled out.
 * x holds the block column by column (x[feature * BLOCK + row]), so a test reads its
 * feature for all the rows side by side.
 */
static inline void
masked_leaves(const Forest *f, Py_ssize_t t, const float *x, int32_t *at)
{
    uint32_t standing[BLOCK];
    for (int r = 0; r < BLOCK; r++) {
        standing[r] = ~(uint32_t)0;
    }
    const int32_t first = f->first_test[t], last = first + f->tests[t];
    for (int32_t k = first; k < last; k++) {
        const float *column = &x[(Py_ssize_t)f->test_feature[k] * BLOCK];
        const float threshold = f->test_threshold[k];
        const uint32_t mask = f->test_mask[k];
#if defined(__SSE2__)
        /* Four rows an instruction; the comparison itself yields a pass's all-ones word. */
        const __m128 limit = _mm_set1_ps(threshold);
        const __m128i ruled_out = _mm_set1_epi32((int)mask);
        for (int r = 0; r < BLOCK; r += 4) {
            __m128i passed = _mm_castps_si128(_mm_cmple_ps(_mm_loadu_ps(&column[r]), limit));
            __m128i *word = (__m128i *)&standing[r];
            __m128i kept = _mm_or_si128(ruled_out, passed);
            _mm_storeu_si128(word, _mm_and_si128(_mm_loadu_si128(word), kept));
        }
#else
        for (int r = 0; r < BLOCK; r++) {
            standing[r] &= mask | ((uint32_t)0 - (column[r] <= threshold));
        }
#endif
    }
    const int32_t *leaf_row = &f->leaf_row[f->first_leaf[t]];
    for (int r = 0; r < BLOCK; r++) {
        at[r] = leaf_row[__builtin_ctz(standing[r])];
    }
}

static inline void
predict_block(const Forest *f, const float *x, double *sum, float *out)
{
    const Node *nodes = f->nodes;
    const Py_ssize_t n_classes = f->n_classes;
    int32_t at[BLOCK];
    for (Py_ssize_t i = 0; i < BLOCK * n_classes; i++) {
        sum[i] = 0.0;
    }
    for (Py_ssize_t t = 0; t < f->n_trees; t++) {
        if (f->first_leaf[t] >= 0) {
            masked_leaves(f, t, x, at);
        } else { /* a walk of fixed length: a leaf is its own child */
            for (int r = 0; r < BLOCK; r++) {
                at[r] = f->roots[t];
            }
            for (int32_t step = f->depths[t]; step > 0; step--) {
                for (int r = 0; r < BLOCK; r++) {
                    const Node *node = &nodes[at[r]];
                    double value = (double)x[(Py_ssize_t)node->feature * BLOCK + r];
                    at[r] = node->left + !(value <= node->threshold);
                }
            }
            for (int r = 0; r < BLOCK; r++) {
                at[r] = f->leaf_of[at[r]];
            }
        }
        for (int r = 0; r < BLOCK; r++) {
            const double *leaf = &f->values[(Py_ssize_t)at[r] * n_classes];
            for (Py_ssize_t c = 0; c < n_classes; c++) {
                sum[r * n_classes + c] += leaf[c];
            }
        }
    }
    const double trees = (double)f->n_trees;
    for (Py_ssize_t i = 0; i < BLOCK * n_classes; i++) {
        out[i] = (float)(sum[i] / trees);
    }
}

/* One row, tree after tree, each walked until its leaf. */
static void
predict_row(const Forest *f, const double *x, double *sum, float *out)
{
    const Node *nodes = f->nodes;
    const Py_ssize_t n_classes = f->n_classes;
    for (Py_ssize_t c = 0; c < n_classes; c++) {
        sum[c] = 0.0;
    }
    for (Py_ssize_t t = 0; t < f->n_trees; t++) {
        int32_t i = f->roots[t];
        while (f->leaf_of[i] < 0) {
            const Node *node = &nodes[i];
            i = node->left + !(x[node->feature] <= node->threshold);
        }
        const double *leaf = &f->values[(Py_ssize_t)f->leaf_of[i] * n_classes];
        for (Py_ssize_t c = 0; c < n_classes; c++) {
            sum[c] += leaf[c];
        }
    }
    const double trees = (double)f->n_trees;
    for (Py_ssize_t c = 0; c < n_classes; c++) {
        out[c] = (float)(sum[c] / trees);
    }
}

static int
predict_rows(const Forest *f, const float *X, Py_ssize_t n_rows, float *out)
{
    /* A block's features column by column (float32, as given), plus the column of 0.0
     * that leaves test; a single row's widened to double, plus its 0.0; the sums. */
    const Py_ssize_t n_features = f->n_features, n_classes = f->n_classes;
    const Py_ssize_t stride = n_features + 1;
    float stack_columns[BLOCK * STACK_WIDTH];
    double stack[BLOCK * STACK_WIDTH + STACK_WIDTH];
    float *columns = stack_columns;
    double *sum = stack, *x = stack + BLOCK * STACK_WIDTH;
    void *heap = NULL;
    if (stride > STACK_WIDTH || n_classes > STACK_WIDTH) {
        size_t width = (size_t)(stride > n_classes ? stride : n_classes);
        heap = malloc((size_t)BLOCK * width * (sizeof(float) + sizeof(double)) +
                      width * sizeof(double));
        if (heap == NULL) {
            return -1;
        }
        sum = heap;
        x = sum + BLOCK * width;
        columns = (float *)(x + width);
    }
    for (Py_ssize_t start = 0; start < n_rows; start += BLOCK) {
        Py_ssize_t rows = n_rows - start < BLOCK ? n_rows - start : BLOCK;
        const float *features = &X[start * n_features];
        if (rows == BLOCK) {
            for (Py_ssize_t j = 0; j < n_features; j++) {
                for (Py_ssize_t r = 0; r < BLOCK; r++) {
                    columns[j * BLOCK + r] = features[r * n_features + j];
                }
            }
            for (Py_ssize_t r = 0; r < BLOCK; r++) {
                columns[n_features * BLOCK + r] = 0.0f;
            }
            predict_block(f, columns, sum, &out[start * n_classes]);
            continue;
        }
        for (Py_ssize_t r = 0; r < rows; r++) {
            for (Py_ssize_t j = 0; j < n_features; j++) {
                x[j] = (double)features[r * n_features + j];
            }
            x[n_features] = 0.0;
            predict_row(f, x, sum, &out[(start + r) * n_classes]);
        }
    }
    free(heap);
    return 0;
}

static int
get_matrix(PyObject *obj, Py_buffer *view, const char *name, Py_ssize_t columns, int writable)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) {
        return -1;
    }
    const char *format = view->format ? view->format : "B";
    if (format[0] == '<' || format[0] == '=' || format[0] == '@') {
        format++;
    }
    if (view->itemsize != 4 || strcmp(format, "f") != 0 || view->ndim != 2 ||
        view->shape[1] != columns) {
        PyErr_Format(PyExc_ValueError, "%s must be a C-contiguous float32 matrix of %zd columns",
                     name, columns);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(predict_doc, "predict(X, out, /)\n--\n\n"
                          "Write the class probabilities of the float32 rows X (n x features) "
                          "into the float32 matrix out (n x classes).");

static PyObject *
Forest_predict(Forest *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "predict(X, out) takes 2 arguments");
        return NULL;
    }
    Py_buffer X, out;
    if (get_matrix(args[0], &X, "X", self->n_features, 0) < 0) {
        return NULL;
    }
    if (get_matrix(args[1], &out, "out", self->n_classes, 1) < 0) {
        PyBuffer_Release(&X);
        return NULL;
    }
    Py_ssize_t n_rows = X.shape[0];
    int failed = 0;
    if (out.shape[0] != n_rows) {
        PyErr_Format(PyExc_ValueError, "out has %zd rows for %zd", out.shape[0], n_rows);
    } else if (n_rows >= NOGIL_ROWS) {
        /* The views keep both buffers alive and unresized; the forest never changes. */
        Py_BEGIN_ALLOW_THREADS
        failed = predict_rows(self, X.buf, n_rows, out.buf);
        Py_END_ALLOW_THREADS
    } else {
        failed = predict_rows(self, X.buf, n_rows, out.buf);
    }
    if (failed) {
        PyErr_NoMemory();
    }
    PyBuffer_Release(&X);
    PyBuffer_Release(&out);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(predict_one_doc,
             "predict_one(features, out, /)\n--\n\n"
             "Write the class probabilities of one row (a sequence of numbers, each rounded "
             "to float32 first) into the float32 vector out.");

static PyObject *
Forest_predict_one(Forest *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "predict_one(features, out) takes 2 arguments");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(args[0], "features must be a sequence of numbers");
    if (seq == NULL) {
        return NULL;
    }
    if (PySequence_Fast_GET_SIZE(seq) != self->n_features) {
        PyErr_Format(PyExc_ValueError, "expected %zd features, got %zd", self->n_features,
                     PySequence_Fast_GET_SIZE(seq));
        Py_DECREF(seq);
        return NULL;
    }
    PyObject **items = PySequence_Fast_ITEMS(seq);
    float row[64];
    float *features = self->n_features <= 64 ? row : PyMem_Malloc(self->n_features * 4);
    if (features == NULL) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t j = 0; j < self->n_features; j++) {
        double value = PyFloat_AsDouble(items[j]);
        if (value == -1.0 && PyErr_Occurred()) {
            Py_DECREF(seq);
            if (features != row) {
                PyMem_Free(features);
            }
            return NULL;
        }
        /* As numpy casts: beyond float32's range is infinity (a C cast would be undefined). */
        features[j] = value > FLT_MAX ? INFINITY : value < -FLT_MAX ? -INFINITY : (float)value;
    }
    Py_DECREF(seq);
    Py_buffer out;
    PyObject *result = NULL;
    if (PyObject_GetBuffer(args[1], &out, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) ==
        0) {
        const char *format = out.format ? out.format : "B";
        if (format[0] == '<' || format[0] == '=' || format[0] == '@') {
            format++;
        }
        if (out.itemsize != 4 || strcmp(format, "f") != 0 || out.len != self->n_classes * 4) {
            PyErr_Format(PyExc_ValueError, "out must be a float32 vector of %zd",
                         self->n_classes);
        } else {
            if (predict_rows(self, features, 1, out.buf) < 0) {
                PyErr_NoMemory();
            } else {
                result = Py_NewRef(Py_None);
            }
        }
        PyBuffer_Release(&out);
    }
    if (features != row) {
        PyMem_Free(features);
    }
    return result;
}

static PyMethodDef Forest_methods[] = {
    {"predict", (PyCFunction)(void (*)(void))Forest_predict, METH_FASTCALL, predict_doc},
    {"predict_one", (PyCFunction)(void (*)(void))Forest_predict_one, METH_FASTCALL,
     predict_one_doc},
    {NULL, NULL, 0, NULL},
};

static PyObject *
Forest_get(Forest *self, void *which)
{
    switch ((intptr_t)which) {
    case 0:
        return PyLong_FromSsize_t(self->n_nodes);
    case 1:
        return PyLong_FromSsize_t(self->n_trees);
    case 2:
        return PyLong_FromSsize_t(self->n_features);
    default:
        return PyLong_FromSsize_t(self->n_classes);
    }
}

static PyGetSetDef Forest_getset[] = {
    {"n_nodes", (getter)Forest_get, NULL, "nodes of all trees", (void *)0},
    {"n_trees", (getter)Forest_get, NULL, "trees", (void *)1},
    {"n_features", (getter)Forest_get, NULL, "features a row has", (void *)2},
    {"n_classes", (getter)Forest_get, NULL, "probabilities a row gets", (void *)3},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(Forest_doc,
             "Forest(feature, threshold, left, right, value, roots, n_features, n_classes)\n--\n\n"
             "A random forest over flattened node arrays, checked once and copied.");

static PyTypeObject ForestType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "irisops._forest.Forest",
    .tp_basicsize = sizeof(Forest),
    .tp_dealloc = (destructor)Forest_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = Forest_doc,
    .tp_methods = Forest_methods,
    .tp_getset = Forest_getset,
    .tp_new = Forest_new,
};

static struct PyModuleDef forest_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "irisops._forest",
    .m_doc = "Random-forest class probabilities from flattened node arrays.",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__forest(void)
{
    if (PyType_Ready(&ForestType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&forest_module);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "Forest", (PyObject *)&ForestType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
