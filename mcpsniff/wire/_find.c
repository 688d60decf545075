/* bytes.find(sub, start, end) without its argument parsing, for the HTTP and SSE layers.
 *
 * bytes.find is a METH_VARARGS method: every call packs its arguments into a tuple and
 * parses them with a format string, 1,000-2,500 instructions, several times per HTTP head
 * and per chunk.  This is a METH_FASTCALL function with the same result (start and end
 * taken as in slice notation).  Built by scripts/compile.py beside the mypyc modules;
 * without it the layers call bytes.find.  Only the stable basics of the C API (3.11-3.13).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static PyObject *find(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4 || !PyBytes_Check(args[0]) || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "find(buf: bytes, sub: bytes, start: int, end: int)");
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[2]), end = PyLong_AsSsize_t(args[3]);
    if ((start == -1 || end == -1) && PyErr_Occurred())
        return NULL;
    const char *buf = PyBytes_AS_STRING(args[0]), *sub = PyBytes_AS_STRING(args[1]);
    Py_ssize_t n = PyBytes_GET_SIZE(args[0]), m = PyBytes_GET_SIZE(args[1]);
    if (start < 0 && (start += n) < 0) /* negative: from the end, as in a slice */
        start = 0;
    if (end < 0 && (end += n) < 0)
        end = 0;
    else if (end > n)
        end = n;
    if (start > n)
        return PyLong_FromLong(-1);
    if (m == 0) /* the empty string is found at the start of a range that is not empty backwards */
        return PyLong_FromSsize_t(start <= end ? start : -1);
    for (Py_ssize_t i = start; end - i >= m;) {
        const char *hit = memchr(buf + i, sub[0], (size_t)(end - i - m + 1));
        if (hit == NULL)
            break;
        i = hit - buf;
        if (memcmp(hit + 1, sub + 1, (size_t)(m - 1)) == 0)
            return PyLong_FromSsize_t(i);
        i++;
    }
    return PyLong_FromLong(-1);
}

static PyMethodDef methods[] = {
    {"find", (PyCFunction)(void (*)(void))find, METH_FASTCALL, "bytes.find(sub, start, end) of buf, as a plain function."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_find", NULL, -1, methods};

PyMODINIT_FUNC PyInit__find(void) { return PyModule_Create(&module); }
