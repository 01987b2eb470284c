/* qw_metrics._speedups: the per-call hot path of `timed` and `recorded` in C.
 *
 * A pure-Python wrapper costs about 230 ns a call, most of it in the wrapper's frame, two
 * `perf_counter` calls and the thread-local shard lookup. Here the wrapper is a vectorcall
 * object that forwards its arguments untouched, reads the monotonic clock directly and counts
 * into plain C arrays; the GIL makes those updates atomic, so no per-thread shards are needed.
 *
 * Counts must match the pure-Python HistogramChild exactly: the same bucket for every value
 * (the first bound checked with one comparison, then bisect_left) and the same sum, added in
 * the same order.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stddef.h>
#ifdef _WIN32
#include <windows.h>
#else
#include <time.h>
#endif

/* ---- Counts: one histogram series ------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    Py_ssize_t n;
    double *bounds;
    unsigned long long *counts;
    double sum;
} CountsObject;

static PyTypeObject CountsType;

static inline void
counts_add(CountsObject *self, double value)
{
    Py_ssize_t lo = 0;
    if (!(value <= self->bounds[0])) {
        Py_ssize_t hi = self->n;
        while (lo < hi) {
            Py_ssize_t mid = (lo + hi) / 2;
            if (self->bounds[mid] < value) {
                lo = mid + 1;
            }
            else {
                hi = mid;
            }
        }
    }
    self->counts[lo]++;
    self->sum += value;
}

static PyObject *
counts_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *given;
    static char *kwlist[] = {"bounds", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:Counts", kwlist, &given)) {
        return NULL;
    }
    PyObject *seq = PySequence_Fast(given, "bounds must be a sequence of floats");
    if (seq == NULL) {
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    CountsObject *self = (CountsObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        Py_DECREF(seq);
        return NULL;
    }
    self->n = n;
    self->sum = 0.0;
    self->bounds = PyMem_Calloc(n ? n : 1, sizeof(double));
    self->counts = PyMem_Calloc(n ? n : 1, sizeof(unsigned long long));
    if (self->bounds == NULL || self->counts == NULL) {
        Py_DECREF(seq);
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        double bound = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(seq, i));
        if (bound == -1.0 && PyErr_Occurred()) {
            Py_DECREF(seq);
            Py_DECREF(self);
            return NULL;
        }
        self->bounds[i] = bound;
    }
    Py_DECREF(seq);
    /* bisect_left never passes the last bucket only because the last bound is +Inf. */
    if (n < 2 || self->bounds[n - 1] != Py_HUGE_VAL) {
        Py_DECREF(self);
        PyErr_Format(PyExc_ValueError,
                     "bounds must hold at least one finite bound and end in +Inf, got %R", given);
        return NULL;
    }
    return (PyObject *)self;
}

static void
counts_dealloc(CountsObject *self)
{
    PyMem_Free(self->bounds);
    PyMem_Free(self->counts);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
counts_observe(CountsObject *self, PyObject *arg)
{
    double value = PyFloat_AsDouble(arg);
    if (value == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    counts_add(self, value);
    Py_RETURN_NONE;
}

static PyObject *
counts_snapshot(CountsObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *counts = PyList_New(self->n);
    if (counts == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < self->n; i++) {
        PyObject *count = PyLong_FromUnsignedLongLong(self->counts[i]);
        if (count == NULL) {
            Py_DECREF(counts);
            return NULL;
        }
        PyList_SET_ITEM(counts, i, count);
    }
    return Py_BuildValue("(Nd)", counts, self->sum);
}

static PyMethodDef counts_methods[] = {
    {"observe", (PyCFunction)counts_observe, METH_O, "Record one value."},
    {"snapshot", (PyCFunction)counts_snapshot, METH_NOARGS,
     "Per-bucket counts (not cumulative) and the sum of all values observed so far."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject CountsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "qw_metrics._speedups.Counts",
    .tp_doc = "Bucket counts and sum of one histogram series.",
    .tp_basicsize = sizeof(CountsObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = counts_new,
    .tp_dealloc = (destructor)counts_dealloc,
    .tp_methods = counts_methods,
};

/* ---- ObservedCall: a function wrapper that observes each call ----------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *func;
    CountsObject *counts;
    PyObject *value;    /* NULL: observe the call's duration; else observe value(result) */
    PyObject *on_error; /* on_error(exc) when value(result) fails or is not a number */
    int age;            /* observe now - result (wall clock seconds), result being a time.time() */
    PyObject *dict;
    PyObject *weakrefs;
    vectorcallfunc vectorcall;
} ObservedCallObject;

/* The monotonic clock perf_counter reads, in ticks; durations are tick differences times
 * tick_seconds, so no precision is lost to large absolute readings. */
#ifdef _WIN32
static double tick_seconds; /* set at module init from QueryPerformanceFrequency */

static inline long long
clock_ticks(void)
{
    LARGE_INTEGER now;
    QueryPerformanceCounter(&now);
    return now.QuadPart;
}
#else
static const double tick_seconds = 1e-9;

static inline long long
clock_ticks(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
}
#endif

/* time.time(): the wall clock, in seconds. */
static inline double
wall_seconds(void)
{
#ifdef _WIN32
    FILETIME now;
    GetSystemTimePreciseAsFileTime(&now);
    /* 100 ns intervals since 1601-01-01; 11644473600 s from then to the Unix epoch. */
    unsigned long long ticks = ((unsigned long long)now.dwHighDateTime << 32) | now.dwLowDateTime;
    return (double)(ticks / 10000000ULL) - 11644473600.0 + (double)(ticks % 10000000ULL) * 1e-7;
#else
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
#endif
}

/* Hand an Exception raised while taking the value to on_error; anything else propagates. */
static int
report_value_error(ObservedCallObject *self)
{
    if (!PyErr_ExceptionMatches(PyExc_Exception)) {
        return -1;
    }
    PyObject *type, *exc, *tb;
    PyErr_Fetch(&type, &exc, &tb);
    PyErr_NormalizeException(&type, &exc, &tb);
    if (tb != NULL) {
        PyException_SetTraceback(exc, tb);
    }
    PyObject *done = PyObject_CallOneArg(self->on_error, exc);
    Py_XDECREF(type);
    Py_XDECREF(exc);
    Py_XDECREF(tb);
    if (done == NULL) {
        PyErr_WriteUnraisable(self->on_error);
    }
    Py_XDECREF(done);
    return 0;
}

static PyObject *
observed_vectorcall(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    ObservedCallObject *self = (ObservedCallObject *)op;
    if (self->value == NULL && !self->age) {
        long long start = clock_ticks();
        PyObject *result = PyObject_Vectorcall(self->func, args, nargsf, kwnames);
        counts_add(self->counts, (double)(clock_ticks() - start) * tick_seconds);
        return result;
    }
    PyObject *result = PyObject_Vectorcall(self->func, args, nargsf, kwnames);
    if (result == NULL) {
        return NULL;
    }
    if (self->age) {
        /* seconds_since(result) without calling it: the same value, no Python frame. */
        if (result != Py_None) {
            double then = PyFloat_AsDouble(result);
            if (then == -1.0 && PyErr_Occurred()) {
                if (report_value_error(self) < 0) {
                    Py_DECREF(result);
                    return NULL;
                }
            }
            else {
                counts_add(self->counts, wall_seconds() - then);
            }
        }
        return result;
    }
    PyObject *number = PyObject_CallOneArg(self->value, result);
    if (number == NULL) {
        if (report_value_error(self) < 0) {
            Py_DECREF(result);
            return NULL;
        }
        return result;
    }
    if (number != Py_None) {
        double value = PyFloat_AsDouble(number);
        if (value == -1.0 && PyErr_Occurred()) {
            if (report_value_error(self) < 0) {
                Py_DECREF(number);
                Py_DECREF(result);
                return NULL;
            }
        }
        else {
            counts_add(self->counts, value);
        }
    }
    Py_DECREF(number);
    return result;
}

static PyObject *
observed_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *func, *counts, *value = Py_None, *on_error = Py_None;
    int age = 0;
    static char *kwlist[] = {"func", "counts", "value", "on_error", "age", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO!|$OOp:ObservedCall", kwlist, &func,
                                     &CountsType, &counts, &value, &on_error, &age)) {
        return NULL;
    }
    if (age && value != Py_None) {
        PyErr_SetString(PyExc_TypeError, "ObservedCall takes value=... or age=True, not both");
        return NULL;
    }
    if (!PyCallable_Check(func)) {
        PyErr_Format(PyExc_TypeError, "ObservedCall wraps a callable, not %R", func);
        return NULL;
    }
    if ((value != Py_None || age) && !PyCallable_Check(on_error)) {
        PyErr_SetString(PyExc_TypeError,
                        "ObservedCall(value=...) and (age=True) need an on_error callable");
        return NULL;
    }
    ObservedCallObject *self = (ObservedCallObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->func = Py_NewRef(func);
    self->counts = (CountsObject *)Py_NewRef(counts);
    self->value = value == Py_None ? NULL : Py_NewRef(value);
    self->on_error = value == Py_None && !age ? NULL : Py_NewRef(on_error);
    self->age = age;
    self->vectorcall = observed_vectorcall;
    return (PyObject *)self;
}

static int
observed_traverse(ObservedCallObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->func);
    Py_VISIT(self->counts);
    Py_VISIT(self->value);
    Py_VISIT(self->on_error);
    Py_VISIT(self->dict);
    return 0;
}

static int
observed_clear(ObservedCallObject *self)
{
    Py_CLEAR(self->func);
    Py_CLEAR(self->counts);
    Py_CLEAR(self->value);
    Py_CLEAR(self->on_error);
    Py_CLEAR(self->dict);
    return 0;
}

static void
observed_dealloc(ObservedCallObject *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakrefs != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    observed_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Bound like a function: accessed on an instance it becomes a method of that instance. */
static PyObject *
observed_get(PyObject *self, PyObject *obj, PyObject *Py_UNUSED(type))
{
    if (obj == NULL || obj == Py_None) {
        return Py_NewRef(self);
    }
    return PyMethod_New(self, obj);
}

static PyObject *
observed_repr(ObservedCallObject *self)
{
    return PyUnicode_FromFormat("<qw_metrics wrapper of %R>", self->func);
}

/* Pickled by reference, as functions are: the string names the global it was bound to. */
static PyObject *
observed_reduce(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyObject_GetAttrString(self, "__qualname__");
}

static PyMethodDef observed_methods[] = {
    {"__reduce__", (PyCFunction)observed_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef observed_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ObservedCallType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "qw_metrics._speedups.ObservedCall",
    .tp_doc = "A function wrapper that observes each call's duration, a value of its result, or "
              "the age of the time.time() it returns.",
    .tp_basicsize = sizeof(ObservedCallObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL
                | Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_new = observed_new,
    .tp_dealloc = (destructor)observed_dealloc,
    .tp_traverse = (traverseproc)observed_traverse,
    .tp_clear = (inquiry)observed_clear,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(ObservedCallObject, vectorcall),
    .tp_descr_get = observed_get,
    .tp_repr = (reprfunc)observed_repr,
    .tp_methods = observed_methods,
    .tp_getset = observed_getset,
    .tp_dictoffset = offsetof(ObservedCallObject, dict),
    .tp_weaklistoffset = offsetof(ObservedCallObject, weakrefs),
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "qw_metrics._speedups",
    .m_doc = "C fast paths for qw_metrics' timed and recorded; see histogram.py for the Python "
             "equivalent.",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
#ifdef _WIN32
    LARGE_INTEGER frequency;
    QueryPerformanceFrequency(&frequency);
    tick_seconds = 1.0 / (double)frequency.QuadPart;
#endif
    if (PyType_Ready(&CountsType) < 0 || PyType_Ready(&ObservedCallType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&speedups_module);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "Counts", (PyObject *)&CountsType) < 0
        || PyModule_AddObjectRef(module, "ObservedCall", (PyObject *)&ObservedCallType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
