/*
 * irisops.serving._tally: what every answered request writes down, in C.
 *
 * Each request the API answers adds one to a count and a latency bucket, and each
 * prediction with a request id is kept in the feedback index's ring. In Python each was
 * a function of ours per request; a server under load spends several times a Python
 * function's in-process cost on it, and these two came to about 5% of a /predict's
 * server CPU (docs/benchmark.md, step 23). As C methods they run no Python frame.
 *
 * Requests(bounds, methods, other): the requests' counts and latency histograms, one
 * series per (method, route, status). record(method, route, status, seconds) adds one
 * request; a method not in `methods` is counted under `other`, so clients cannot make
 * new series at will. series() returns every series' key, its count per bucket (the
 * first bound >= seconds, then one past the last bound) and its summed seconds.
 *
 * Ring(hashes, versions, class_ids, shadows, labelled): the write side of the feedback
 * index (serving/feedback.py), over the containers Feedback reads. remember(request_id,
 * version, class_ids) writes the next slot, oldest first, and returns it.
 *
 * compact(class_ids): what a slot keeps of an answer's class ids (see feedback.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <stdint.h>
#include <string.h>

/* ---- Requests ---------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *index;   /* (method, route, status) -> its row, a Python int */
    PyObject *methods; /* the methods counted under their own name */
    PyObject *other;   /* what any other method is counted as */
    double *bounds;
    Py_ssize_t buckets;  /* bounds + 1: the last counts what is above every bound */
    Py_ssize_t rows;
    uint64_t *counts;    /* rows x buckets */
    double *seconds;     /* rows */
} Requests;

static void Requests_dealloc(Requests *self) {
    Py_XDECREF(self->index);
    Py_XDECREF(self->methods);
    Py_XDECREF(self->other);
    PyMem_Free(self->bounds);
    PyMem_Free(self->counts);
    PyMem_Free(self->seconds);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Requests_init(Requests *self, PyObject *args, PyObject *kwargs) {
    PyObject *bounds, *methods, *other;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0) {
        PyErr_SetString(PyExc_TypeError, "Requests takes no keyword arguments");
        return -1;
    }
    if (!PyArg_ParseTuple(args, "O!O!U:Requests", &PyTuple_Type, &bounds, &PyFrozenSet_Type,
                          &methods, &other))
        return -1;
    if (self->index != NULL) {
        PyErr_SetString(PyExc_TypeError, "Requests is set up once");
        return -1;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(bounds);
    PyMem_Free(self->bounds); /* from an __init__ that failed */
    self->bounds = PyMem_New(double, count > 0 ? count : 1);
    if (self->bounds == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        double bound = PyFloat_AsDouble(PyTuple_GET_ITEM(bounds, i));
        if (bound == -1.0 && PyErr_Occurred()) return -1;
        if (i > 0 && !(bound > self->bounds[i - 1])) {
            PyErr_SetString(PyExc_ValueError, "bounds must increase");
            return -1;
        }
        self->bounds[i] = bound;
    }
    self->buckets = count + 1;
    self->index = PyDict_New();
    if (self->index == NULL) return -1;
    Py_INCREF(methods);
    self->methods = methods;
    Py_INCREF(other);
    self->other = other;
    return 0;
}

/* The row of a new series, or -1 with an exception. */
static Py_ssize_t Requests_add(Requests *self, PyObject *key) {
    Py_ssize_t row = self->rows;
    uint64_t *counts = PyMem_Realloc(self->counts, sizeof(uint64_t) * self->buckets * (row + 1));
    if (counts == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->counts = counts;
    double *seconds = PyMem_Realloc(self->seconds, sizeof(double) * (row + 1));
    if (seconds == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->seconds = seconds;
    memset(counts + self->buckets * row, 0, sizeof(uint64_t) * self->buckets);
    seconds[row] = 0.0;
    PyObject *value = PyLong_FromSsize_t(row);
    if (value == NULL) return -1;
    int failed = PyDict_SetItem(self->index, key, value);
    Py_DECREF(value);
    if (failed) return -1;
    self->rows = row + 1;
    return row;
}

/* The row of (method, route, status), made if new; -1 with an exception. */
static Py_ssize_t Requests_row(Requests *self, PyObject *method, PyObject *route, PyObject *status) {
    PyObject *key = PyTuple_Pack(3, method, route, status);
    if (key == NULL) return -1;
    PyObject *found = PyDict_GetItemWithError(self->index, key);
    Py_ssize_t row = -1;
    if (found != NULL) {
        row = PyLong_AsSsize_t(found);
    } else if (!PyErr_Occurred()) {
        /* Keyed by the label, not the method a client sent: unusual methods share one
         * series (and come this way every time). */
        int known = method == self->other ? 1 : PySet_Contains(self->methods, method);
        if (known == 0) {
            Py_DECREF(key);
            return Requests_row(self, self->other, route, status);
        }
        if (known == 1) row = Requests_add(self, key);
    }
    Py_DECREF(key);
    return row;
}

static PyObject *Requests_record(Requests *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "record(method, route, status, seconds)");
        return NULL;
    }
    if (self->index == NULL) {
        PyErr_SetString(PyExc_TypeError, "Requests is not set up");
        return NULL;
    }
    double seconds = PyFloat_AsDouble(args[3]);
    if (seconds == -1.0 && PyErr_Occurred()) return NULL;
    Py_ssize_t row = Requests_row(self, args[0], args[1], args[2]);
    if (row < 0) return NULL;
    /* The first bound >= seconds: what Prometheus' `le` means. */
    Py_ssize_t bucket = 0;
    while (bucket < self->buckets - 1 && self->bounds[bucket] < seconds) bucket++;
    self->counts[self->buckets * row + bucket] += 1;
    self->seconds[row] += seconds;
    Py_RETURN_NONE;
}

static PyObject *Requests_series(Requests *self, PyObject *Py_UNUSED(ignored)) {
    PyObject *result = PyList_New(0);
    if (result == NULL || self->index == NULL) return result;
    PyObject *key, *value;
    Py_ssize_t position = 0;
    while (PyDict_Next(self->index, &position, &key, &value)) {
        Py_ssize_t row = PyLong_AsSsize_t(value);
        PyObject *counts = PyList_New(self->buckets);
        if (counts == NULL) goto fail;
        for (Py_ssize_t b = 0; b < self->buckets; b++) {
            PyObject *count = PyLong_FromUnsignedLongLong(self->counts[self->buckets * row + b]);
            if (count == NULL) {
                Py_DECREF(counts);
                goto fail;
            }
            PyList_SET_ITEM(counts, b, count);
        }
        PyObject *item = Py_BuildValue("(ONd)", key, counts, self->seconds[row]);
        if (item == NULL || PyList_Append(result, item) < 0) {
            Py_XDECREF(item);
            goto fail;
        }
        Py_DECREF(item);
    }
    return result;
fail:
    Py_DECREF(result);
    return NULL;
}

static PyMethodDef Requests_methods[] = {
    {"record", (PyCFunction)(void (*)(void))Requests_record, METH_FASTCALL,
     "record(method, route, status, seconds): one request answered."},
    {"series", (PyCFunction)Requests_series, METH_NOARGS,
     "series() -> [((method, route, status), counts per bucket, seconds), ...]"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RequestsType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "irisops.serving._tally.Requests",
    .tp_doc = "Requests(bounds, methods, other): request counts and latency histograms.",
    .tp_basicsize = sizeof(Requests),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Requests_init,
    .tp_dealloc = (destructor)Requests_dealloc,
    .tp_methods = Requests_methods,
};

/* ---- compact ----------------------------------------------------------------------- */

/* One row's class id as the int it is; a longer list as a tuple; anything else as it is. */
static PyObject *compact(PyObject *Py_UNUSED(module), PyObject *class_ids) {
    if (!PyList_Check(class_ids)) return Py_NewRef(class_ids);
    if (PyList_GET_SIZE(class_ids) == 1) return Py_NewRef(PyList_GET_ITEM(class_ids, 0));
    return PyList_AsTuple(class_ids);
}

/* ---- Ring -------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *hashes; /* an array("q"), its buffer held below */
    Py_buffer view;
    PyObject *versions;
    PyObject *class_ids;
    PyObject *shadows;
    PyObject *labelled;
    Py_ssize_t capacity;
    Py_ssize_t next;
} Ring;

static int Ring_traverse(Ring *self, visitproc visit, void *arg) {
    Py_VISIT(self->hashes);
    Py_VISIT(self->versions);
    Py_VISIT(self->class_ids);
    Py_VISIT(self->shadows);
    Py_VISIT(self->labelled);
    return 0;
}

static int Ring_clear(Ring *self) {
    if (self->view.obj != NULL) PyBuffer_Release(&self->view);
    Py_CLEAR(self->hashes);
    Py_CLEAR(self->versions);
    Py_CLEAR(self->class_ids);
    Py_CLEAR(self->shadows);
    Py_CLEAR(self->labelled);
    return 0;
}

static void Ring_dealloc(Ring *self) {
    PyObject_GC_UnTrack(self);
    Ring_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Ring_init(Ring *self, PyObject *args, PyObject *kwargs) {
    PyObject *hashes, *versions, *class_ids, *shadows, *labelled;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0) {
        PyErr_SetString(PyExc_TypeError, "Ring takes no keyword arguments");
        return -1;
    }
    if (!PyArg_ParseTuple(args, "OO!O!O!O!:Ring", &hashes, &PyList_Type, &versions, &PyList_Type,
                          &class_ids, &PyList_Type, &shadows, &PyDict_Type, &labelled))
        return -1;
    if (self->hashes != NULL) {
        PyErr_SetString(PyExc_TypeError, "Ring is set up once");
        return -1;
    }
    if (PyObject_GetBuffer(hashes, &self->view, PyBUF_WRITABLE | PyBUF_FORMAT) < 0) return -1;
    Py_ssize_t capacity = self->view.len / (Py_ssize_t)sizeof(int64_t);
    if (self->view.itemsize != sizeof(int64_t) || self->view.format == NULL ||
        strcmp(self->view.format, "q") != 0 || capacity < 1 ||
        PyList_GET_SIZE(versions) != capacity || PyList_GET_SIZE(class_ids) != capacity ||
        PyList_GET_SIZE(shadows) != capacity) {
        PyBuffer_Release(&self->view);
        PyErr_SetString(PyExc_ValueError,
                        "Ring needs an array('q') of at least one hash and lists of its length");
        return -1;
    }
    self->hashes = Py_NewRef(hashes);
    self->versions = Py_NewRef(versions);
    self->class_ids = Py_NewRef(class_ids);
    self->shadows = Py_NewRef(shadows);
    self->labelled = Py_NewRef(labelled);
    self->capacity = capacity;
    return 0;
}

/* Replace list[slot], which must still be there (lists can be shrunk from Python). */
static int put(PyObject *list, Py_ssize_t slot, PyObject *value) {
    if (PyList_GET_SIZE(list) <= slot) {
        Py_DECREF(value);
        PyErr_SetString(PyExc_RuntimeError, "a ring's list was shrunk");
        return -1;
    }
    PyObject *old = PyList_GET_ITEM(list, slot);
    PyList_SET_ITEM(list, slot, value);
    Py_DECREF(old);
    return 0;
}

static PyObject *Ring_remember(Ring *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "remember(request_id, version, class_ids)");
        return NULL;
    }
    if (self->hashes == NULL) {
        PyErr_SetString(PyExc_TypeError, "Ring is not set up");
        return NULL;
    }
    Py_hash_t hash = PyObject_Hash(args[0]);
    if (hash == -1 && PyErr_Occurred()) return NULL;
    PyObject *kept = compact(NULL, args[2]);
    if (kept == NULL) return NULL;
    Py_ssize_t slot = self->next;
    if (put(self->class_ids, slot, kept) < 0 || put(self->versions, slot, Py_NewRef(args[1])) < 0 ||
        put(self->shadows, slot, Py_NewRef(Py_None)) < 0)
        return NULL;
    ((int64_t *)self->view.buf)[slot] = (int64_t)hash;
    self->next = slot + 1 < self->capacity ? slot + 1 : 0;
    PyObject *number = PyLong_FromSsize_t(slot);
    if (number == NULL) return NULL;
    if (PyDict_GET_SIZE(self->labelled) > 0) {
        int had = PyDict_Contains(self->labelled, number);
        if (had < 0 || (had == 1 && PyDict_DelItem(self->labelled, number) < 0)) {
            Py_DECREF(number);
            return NULL;
        }
    }
    return number;
}

static PyMethodDef Ring_methods[] = {
    {"remember", (PyCFunction)(void (*)(void))Ring_remember, METH_FASTCALL,
     "remember(request_id, version, class_ids) -> int: keep an answer; the slot it is kept in."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Ring_members[] = {
    {"next", T_PYSSIZET, offsetof(Ring, next), READONLY, "the slot the next answer overwrites"},
    {"capacity", T_PYSSIZET, offsetof(Ring, capacity), READONLY, "how many answers are kept"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject RingType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "irisops.serving._tally.Ring",
    .tp_doc = "Ring(hashes, versions, class_ids, shadows, labelled): the feedback index's writes.",
    .tp_basicsize = sizeof(Ring),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Ring_init,
    .tp_dealloc = (destructor)Ring_dealloc,
    .tp_traverse = (traverseproc)Ring_traverse,
    .tp_clear = (inquiry)Ring_clear,
    .tp_methods = Ring_methods,
    .tp_members = Ring_members,
};

/* ---- the module -------------------------------------------------------------------- */

static PyMethodDef methods[] = {
    {"compact", compact, METH_O,
     "compact(class_ids): one row's class id as an int, a longer list as a tuple, else as is."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "irisops.serving._tally",
    .m_doc = "What every answered request writes down, in C.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__tally(void) {
    if (PyType_Ready(&RequestsType) < 0 || PyType_Ready(&RingType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddObjectRef(m, "Requests", (PyObject *)&RequestsType) < 0 ||
        PyModule_AddObjectRef(m, "Ring", (PyObject *)&RingType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
