/*
 * irisops.serving._rows: a batch's rows in and out of JSON, and a prediction's log line, in C.
 *
 * parse: the rows of a body of exactly the plain form {"instances": [[n, n, n, n], ...]},
 * as float32, without a Python object per number. Every number is checked against JSON's
 * grammar, then read by CPython's own correctly rounded conversion (PyOS_string_to_double,
 * what float() uses) and rounded once to float32: the values pydantic's validation gives.
 * Anything else (another key, a string, true, null, a number too long or out of range,
 * rows of another length, no rows, too many) returns None, and pydantic decides.
 *
 * parse_one: the one row of a body of exactly the plain form {"features": [n, n, n, n]},
 * read the same way, as the list of Python floats pydantic's validation gives (the
 * doubles, not yet rounded to float32), or None.
 *
 * render:
 * Building one Python dict per row and serialising them took most of a 10,000-row
 * /predict/batch. Here orjson writes the probability matrix once (its shortest float32
 * numbers, exactly as every other answer spells them), and each row's object is copied
 * together from that text and fragments of JSON made once per model in Python:
 *
 *   row i = heads[class_ids[i]] + keys[0] + p[i][0] + "," + keys[1] + p[i][1] + ...
 *           + tail [+ extras[i]] + "}"
 *
 * and the rows are joined by commas. Nothing is parsed but the matrix's brackets and
 * commas; a matrix of the wrong shape, or a class id out of range, is a ValueError.
 *
 * log_line: the inference log's line for one prediction, copied together the same way
 * from fragments made once per model (serving/log_lines.py) and orjson's text of the
 * row, the probabilities and the latency, with the time written here as utc_stamp
 * writes it. A request id that is not plain printable ASCII, or numbers' text of
 * another shape, returns None: the record is then written from its dict.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

/* The bytes of each item of a tuple of bytes, checked once. */
typedef struct {
    const char **data;
    Py_ssize_t *size;
    Py_ssize_t n;
    Py_ssize_t largest;
    Py_ssize_t total;
} Pieces;

static void pieces_free(Pieces *p) {
    PyMem_Free(p->data);
    PyMem_Free(p->size);
    p->data = NULL;
    p->size = NULL;
}

static int pieces_of(PyObject *tuple, const char *what, Pieces *p) {
    memset(p, 0, sizeof(*p));
    if (!PyTuple_Check(tuple)) {
        PyErr_Format(PyExc_TypeError, "%s must be a tuple of bytes", what);
        return -1;
    }
    p->n = PyTuple_GET_SIZE(tuple);
    p->data = PyMem_Calloc(p->n ? p->n : 1, sizeof(*p->data));
    p->size = PyMem_Calloc(p->n ? p->n : 1, sizeof(*p->size));
    if (p->data == NULL || p->size == NULL) {
        pieces_free(p);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < p->n; i++) {
        PyObject *item = PyTuple_GET_ITEM(tuple, i);
        if (!PyBytes_Check(item)) {
            pieces_free(p);
            PyErr_Format(PyExc_TypeError, "%s must be a tuple of bytes", what);
            return -1;
        }
        p->data[i] = PyBytes_AS_STRING(item);
        p->size[i] = PyBytes_GET_SIZE(item);
        p->total += p->size[i];
        if (p->size[i] > p->largest) p->largest = p->size[i];
    }
    return 0;
}

static char *put(char *out, const char *data, Py_ssize_t size) {
    memcpy(out, data, (size_t)size);
    return out + size;
}

/* Writes row `row`'s numbers from `*at` in the matrix text; NULL if it is malformed. */
static char *numbers(char *out, const char **at, const char *end, const Pieces *keys) {
    const char *p = *at;
    if (p >= end || *p != '[') return NULL;
    p++;
    for (Py_ssize_t j = 0; j < keys->n; j++) {
        const char *start = p;
        while (p < end && *p != ',' && *p != ']' && *p != '[') p++;
        if (p == start || p >= end || *p != (j + 1 < keys->n ? ',' : ']')) return NULL;
        if (j) *out++ = ',';
        out = put(out, keys->data[j], keys->size[j]);
        out = put(out, start, p - start);
        p++;
    }
    *at = p;
    return out;
}

static PyObject *render(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer ids;
    const char *matrix, *tail;
    Py_ssize_t matrix_size, tail_size;
    PyObject *ids_object, *heads_tuple, *keys_tuple, *extras_tuple;
    if (!PyArg_ParseTuple(args, "Oy#O!O!y#O:render", &ids_object, &matrix, &matrix_size,
                          &PyTuple_Type, &heads_tuple, &PyTuple_Type, &keys_tuple, &tail,
                          &tail_size, &extras_tuple))
        return NULL;
    if (PyObject_GetBuffer(ids_object, &ids, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return NULL;
    PyObject *result = NULL;
    Pieces heads = {0}, keys = {0}, extras = {0};
    const char *format = ids.format ? ids.format : "B";
    if (format[0] == '<' || format[0] == '=' || format[0] == '@') format++;
    if (ids.itemsize != 8 || ids.ndim != 1 || format[1] != '\0' ||
        (format[0] != 'l' && format[0] != 'q')) {
        PyErr_SetString(PyExc_ValueError, "class_ids must be an int64 vector");
        goto done;
    }
    if (pieces_of(heads_tuple, "heads", &heads) < 0) goto done;
    if (pieces_of(keys_tuple, "keys", &keys) < 0) goto done;
    if (keys.n == 0) {
        PyErr_SetString(PyExc_ValueError, "keys must name at least one class");
        goto done;
    }
    const Py_ssize_t n = ids.len / 8;
    if (extras_tuple != Py_None) {
        if (pieces_of(extras_tuple, "extras", &extras) < 0) goto done;
        if (extras.n != n) {
            PyErr_SetString(PyExc_ValueError, "extras must have one item per row");
            goto done;
        }
    }
    const int64_t *class_ids = ids.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (class_ids[i] < 0 || class_ids[i] >= heads.n) {
            PyErr_Format(PyExc_ValueError, "class id %lld has no head", (long long)class_ids[i]);
            goto done;
        }
    }
    /* Every row's fragments, the matrix's text (which holds each number once) and a comma
     * after each row: an upper bound, since the matrix's brackets are not copied. */
    const Py_ssize_t bound = n * (heads.largest + keys.total + keys.n + tail_size + 2) +
                             matrix_size + extras.total;
    result = PyBytes_FromStringAndSize(NULL, bound);
    if (result == NULL) goto done;
    char *const start = PyBytes_AS_STRING(result);
    char *out = start;
    const char *at = matrix, *end = matrix + matrix_size;
    if (at >= end || *at++ != '[') goto malformed;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i) {
            if (at >= end || *at++ != ',') goto malformed;
            *out++ = ',';
        }
        out = put(out, heads.data[class_ids[i]], heads.size[class_ids[i]]);
        out = numbers(out, &at, end, &keys);
        if (out == NULL) goto malformed;
        out = put(out, tail, tail_size);
        if (extras.data != NULL) out = put(out, extras.data[i], extras.size[i]);
        *out++ = '}';
    }
    if (at + 1 != end || *at != ']') goto malformed;
    if (_PyBytes_Resize(&result, out - start) < 0) result = NULL;
    goto done;
malformed:
    Py_CLEAR(result);
    PyErr_Format(PyExc_ValueError, "matrix is not %zd rows of %zd numbers", n, keys.n);
done:
    pieces_free(&heads);
    pieces_free(&keys);
    pieces_free(&extras);
    PyBuffer_Release(&ids);
    return result;
}

/* The longest number read here; a longer one (never a float32's worth) goes to pydantic. */
#define MAX_NUMBER 64

static const char *spaces(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

static const char *digits(const char *p, const char *end) {
    while (p < end && *p >= '0' && *p <= '9') p++;
    return p;
}

/* The end of the JSON number at p, or NULL if none starts there. */
static const char *number_end(const char *p, const char *end) {
    if (p < end && *p == '-') p++;
    if (p >= end) return NULL;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        p = digits(p, end);
    } else {
        return NULL;
    }
    if (p < end && *p == '.') {
        const char *start = ++p;
        p = digits(p, end);
        if (p == start) return NULL;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        const char *start = p;
        p = digits(p, end);
        if (p == start) return NULL;
    }
    return p;
}

/* Reads one number into *out; NULL if there is none, it is too long, or out of float32's
 * range (which pydantic is left to decide). */
static const char *read_number(const char *p, const char *end, double *out) {
    const char *stop = number_end(p, end);
    if (stop == NULL || stop - p >= MAX_NUMBER) return NULL;
    char text[MAX_NUMBER];
    memcpy(text, p, (size_t)(stop - p));
    text[stop - p] = '\0';
    char *parsed_to;
    double value = PyOS_string_to_double(text, &parsed_to, NULL);
    if (value == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return NULL;
    }
    if (parsed_to != text + (stop - p) || !isfinite(value) || !isfinite((float)value)) return NULL;
    /* An integer is read as pydantic reads one, float(int(text)): -0 is 0, not -0.0. */
    if (value == 0.0 && strpbrk(text, ".eE") == NULL) value = 0.0;
    *out = value;
    return stop;
}

static const char *literal(const char *p, const char *end, const char *text) {
    size_t size = strlen(text);
    if ((size_t)(end - p) < size || memcmp(p, text, size) != 0) return NULL;
    return p + size;
}

/* The most features a row may have here (a wider one is a ValueError). */
#define MAX_FEATURES 64

/* Reads one row [n, n, ...] of `features` numbers into row; NULL if there is none. */
static const char *row_into(const char *p, const char *end, Py_ssize_t features, double *row) {
    if ((p = literal(spaces(p, end), end, "[")) == NULL) return NULL;
    for (Py_ssize_t j = 0; j < features; j++) {
        if (j && (p = literal(spaces(p, end), end, ",")) == NULL) return NULL;
        if ((p = read_number(spaces(p, end), end, &row[j])) == NULL) return NULL;
    }
    return literal(spaces(p, end), end, "]");
}

/* Reads the opening {"key": of a body; NULL if it is not there. */
static const char *opening(const char *p, const char *end, const char *key) {
    if ((p = literal(spaces(p, end), end, "{")) == NULL) return NULL;
    if ((p = literal(spaces(p, end), end, key)) == NULL) return NULL;
    return literal(spaces(p, end), end, ":");
}

/* Whether the body ends at p with its closing brace. */
static int closing(const char *p, const char *end) {
    return (p = literal(spaces(p, end), end, "}")) != NULL && spaces(p, end) == end;
}

/* Fills out with up to max_rows rows; the number of rows, or -1 if the body is not plain. */
static Py_ssize_t parse_into(const char *p, const char *end, Py_ssize_t features,
                             Py_ssize_t max_rows, float *out) {
    if ((p = opening(p, end, "\"instances\"")) == NULL) return -1;
    if ((p = literal(spaces(p, end), end, "[")) == NULL) return -1;
    Py_ssize_t rows = 0;
    double row[MAX_FEATURES];
    for (;;) {
        if (rows == max_rows || (p = row_into(p, end, features, row)) == NULL) return -1;
        for (Py_ssize_t j = 0; j < features; j++) out[rows * features + j] = (float)row[j];
        rows++;
        p = spaces(p, end);
        if (p >= end || *p != ',') break;
        p++;
    }
    if ((p = literal(p, end, "]")) == NULL) return -1;
    return closing(p, end) ? rows : -1;
}

static int check_features(Py_ssize_t features) {
    if (features < 1 || features > MAX_FEATURES) {
        PyErr_Format(PyExc_ValueError, "features must be 1 to %d", MAX_FEATURES);
        return -1;
    }
    return 0;
}

static PyObject *parse(PyObject *self, PyObject *args) {
    (void)self;
    const char *raw;
    Py_ssize_t size, features, max_rows;
    if (!PyArg_ParseTuple(args, "y#nn:parse", &raw, &size, &features, &max_rows)) return NULL;
    if (check_features(features) < 0) return NULL;
    if (max_rows < 0) {
        PyErr_SetString(PyExc_ValueError, "max_rows must not be negative");
        return NULL;
    }
    /* A row takes at least 2 * features + 1 bytes: no more can fit in the body. */
    Py_ssize_t fit = size / (2 * features + 1) + 1;
    Py_ssize_t capacity = fit < max_rows ? fit : max_rows;
    PyObject *result = PyBytes_FromStringAndSize(NULL, capacity * features * 4);
    if (result == NULL) return NULL;
    float *out = (float *)PyBytes_AS_STRING(result);
    Py_ssize_t rows = parse_into(raw, raw + size, features, capacity, out);
    if (rows <= 0) {
        Py_DECREF(result);
        Py_RETURN_NONE;
    }
    if (_PyBytes_Resize(&result, rows * features * 4) < 0) return NULL;
    return result;
}

static PyObject *parse_one(PyObject *self, PyObject *args) {
    (void)self;
    const char *raw;
    Py_ssize_t size, features;
    if (!PyArg_ParseTuple(args, "y#n:parse_one", &raw, &size, &features)) return NULL;
    if (check_features(features) < 0) return NULL;
    const char *p, *end = raw + size;
    double row[MAX_FEATURES];
    if ((p = opening(raw, end, "\"features\"")) == NULL ||
        (p = row_into(p, end, features, row)) == NULL || !closing(p, end))
        Py_RETURN_NONE;
    PyObject *result = PyList_New(features);
    if (result == NULL) return NULL;
    for (Py_ssize_t j = 0; j < features; j++) {
        PyObject *number = PyFloat_FromDouble(row[j]);
        if (number == NULL) {
            Py_DECREF(result);
            return NULL;
        }
        PyList_SET_ITEM(result, j, number);
    }
    return result;
}

/* The end of the top-level item of a JSON array of numbers and arrays starting at `p`:
 * the comma or closing bracket after it; NULL if there is none, or a string. */
static const char *item_end(const char *p, const char *end) {
    int depth = 0;
    for (; p < end; p++) {
        if (*p == '"') return NULL;
        if (*p == '[') depth++;
        else if (*p == ']' && depth-- == 0) return p;
        else if (*p == ',' && depth == 0) return p;
    }
    return NULL;
}

#define LOG_PARTS 6
#define STAMP_SIZE 32 /* 2026-12-01T19:30:05.123456+00:00 */

static void digits_into(char *out, long value, int width) {
    for (int i = width - 1; i >= 0; i--, value /= 10) out[i] = (char)('0' + value % 10);
}

/* The date and time of day of `whole` seconds since the epoch, "YYYY-MM-DDTHH:MM:SS",
 * remembered for the last second asked (the GIL makes it one caller at a time):
 * gmtime_r and snprintf took most of a line's time. Days to a civil date as in
 * Howard Hinnant's `civil_from_days`. */
static const char *second_text(long long whole) {
    static long long cached = -1;
    static char text[20];
    if (whole == cached) return text;
    long long days = whole / 86400, rest = whole % 86400;
    long long z = days + 719468, era = z / 146097;
    long long doe = z - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long long mp = (5 * doy + 2) / 153;
    long long day = doy - (153 * mp + 2) / 5 + 1, month = mp < 10 ? mp + 3 : mp - 9;
    long long year = yoe + era * 400 + (month <= 2);
    digits_into(text, (long)year, 4);
    text[4] = '-';
    digits_into(text + 5, (long)month, 2);
    text[7] = '-';
    digits_into(text + 8, (long)day, 2);
    text[10] = 'T';
    digits_into(text + 11, (long)(rest / 3600), 2);
    text[13] = ':';
    digits_into(text + 14, (long)(rest / 60 % 60), 2);
    text[16] = ':';
    digits_into(text + 17, (long)(rest % 60), 2);
    text[19] = '\0';
    cached = whole;
    return text;
}

/* `seconds` since the epoch as utc_stamp writes them, 2026-12-01T19:30:05.123456+00:00
 * (STAMP_SIZE bytes); 0 if they cannot be. */
static int stamp_into(char *out, double seconds) {
    if (!(seconds >= 0 && seconds < 253402300800.0)) return 0; /* up to year 9999 */
    long long whole = (long long)seconds;
    long micro = (long)((seconds - (double)whole) * 1000000.0); /* truncated, as %06d does */
    memcpy(out, second_text(whole), 19);
    out[19] = '.';
    digits_into(out + 20, micro, 6);
    memcpy(out + 26, "+00:00", 6);
    return STAMP_SIZE;
}

static int plain_ascii(const char *text, Py_ssize_t size) {
    for (Py_ssize_t i = 0; i < size; i++)
        if (text[i] < 0x20 || text[i] > 0x7e || text[i] == '"' || text[i] == '\\') return 0;
    return 1;
}

/* The digits of `value` >= 0 at the end of `out[24]`; their start. */
static char *integer_text(char *end, Py_ssize_t value) {
    do *--end = (char)('0' + value % 10);
    while ((value /= 10) > 0);
    return end;
}

static PyObject *log_line(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *parts_tuple, *rid_object;
    double now;
    const char *numbers;
    Py_ssize_t numbers_size, class_id;
    if (!PyArg_ParseTuple(args, "O!dOy#n:log_line", &PyTuple_Type, &parts_tuple, &now,
                          &rid_object, &numbers, &numbers_size, &class_id))
        return NULL;
    const char *part[LOG_PARTS];
    Py_ssize_t part_size[LOG_PARTS], size = 0;
    if (PyTuple_GET_SIZE(parts_tuple) != LOG_PARTS) {
        PyErr_Format(PyExc_ValueError, "parts must be a tuple of %d bytes", LOG_PARTS);
        return NULL;
    }
    for (int i = 0; i < LOG_PARTS; i++) {
        PyObject *item = PyTuple_GET_ITEM(parts_tuple, i);
        if (!PyBytes_Check(item)) {
            PyErr_Format(PyExc_TypeError, "parts must be a tuple of %d bytes", LOG_PARTS);
            return NULL;
        }
        part[i] = PyBytes_AS_STRING(item);
        size += part_size[i] = PyBytes_GET_SIZE(item);
    }
    if (class_id < 0) {
        PyErr_SetString(PyExc_ValueError, "class_id must not be negative");
        return NULL;
    }
    const char *rid = "null";
    Py_ssize_t rid_size = 4;
    int quoted = rid_object != Py_None;
    if (quoted) {
        if (!PyUnicode_Check(rid_object)) {
            PyErr_SetString(PyExc_TypeError, "request_id must be a str or None");
            return NULL;
        }
        if ((rid = PyUnicode_AsUTF8AndSize(rid_object, &rid_size)) == NULL) return NULL;
        if (!plain_ascii(rid, rid_size)) Py_RETURN_NONE;
    }
    /* [row, probabilities, latency] */
    const char *end = numbers + numbers_size, *item[3], *stop[3], *p = numbers + 1;
    if (numbers_size < 2 || numbers[0] != '[') Py_RETURN_NONE;
    for (int i = 0; i < 3; i++) {
        item[i] = p;
        stop[i] = item_end(p, end);
        if (stop[i] == NULL || stop[i] == p || *stop[i] != (i < 2 ? ',' : ']')) Py_RETURN_NONE;
        size += stop[i] - p;
        p = stop[i] + 1;
    }
    if (p != end) Py_RETURN_NONE;
    char stamp[STAMP_SIZE], class_digits[24];
    if (stamp_into(stamp, now) == 0) Py_RETURN_NONE;
    char *class_text = integer_text(class_digits + sizeof(class_digits), class_id);
    Py_ssize_t class_size = class_digits + sizeof(class_digits) - class_text;
    size += STAMP_SIZE + rid_size + 2 * quoted + class_size + 2;
    PyObject *result = PyBytes_FromStringAndSize(NULL, size);
    if (result == NULL) return NULL;
    char *out = PyBytes_AS_STRING(result);
    out = put(out, part[0], part_size[0]);
    out = put(out, stamp, STAMP_SIZE);
    out = put(out, part[1], part_size[1]);
    if (quoted) *out++ = '"';
    out = put(out, rid, rid_size);
    if (quoted) *out++ = '"';
    out = put(out, part[2], part_size[2]);
    out = put(out, item[0], stop[0] - item[0]);
    out = put(out, part[3], part_size[3]);
    out = put(out, item[1], stop[1] - item[1]);
    out = put(out, part[4], part_size[4]);
    out = put(out, class_text, class_size);
    out = put(out, part[5], part_size[5]);
    out = put(out, item[2], stop[2] - item[2]);
    *out++ = '}';
    *out = '\n';
    return result;
}

static PyMethodDef methods[] = {
    {"parse", parse, METH_VARARGS,
     "parse(raw, features, max_rows) -> bytes | None: the float32 rows of a plain batch body."},
    {"parse_one", parse_one, METH_VARARGS,
     "parse_one(raw, features) -> list[float] | None: the row of a plain single-row body."},
    {"render", render, METH_VARARGS,
     "render(class_ids, matrix, heads, keys, tail, extras) -> bytes: the rows, joined by "
     "commas."},
    {"log_line", log_line, METH_VARARGS,
     "log_line(parts, now, request_id, numbers, class_id) -> bytes | None: one prediction's "
     "inference-log line."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "irisops.serving._rows",
    .m_doc = "A batch's rows in and out of JSON, and a prediction's log line, in C.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__rows(void) { return PyModule_Create(&module); }
