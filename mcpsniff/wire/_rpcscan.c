/* jsonrpc.plain_notification (wire/jsonrpc.py) in C: is a text one well-formed JSON-RPC
 * notification with flat params, and if so, which method?
 *
 * The same grammar as jsonrpc._flat_notification_pattern (the Python fallback, and the reference
 * the tests hold this to): an object of the members "method" (a non-empty string),
 * "jsonrpc" ("2.0") and optionally "params" (an object of scalars), each once, in any
 * order; no whitespace; strings without escapes or control characters; numbers that
 * json turns into an int (at most 31 digits) or a float.  The regular expression costs
 * as much as json.loads (about 15,000 instructions a progress event); this walk, a
 * few hundred.  Built by scripts/compile.py beside the mypyc modules; without it the
 * regular expression runs.  It reads str objects through PyUnicode_READ (the full API, not
 * the limited one), the same in 3.11-3.13.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

typedef struct {
    int kind;
    const void *data;
    Py_ssize_t n, i;
} Cursor;

static inline Py_UCS4 peek(const Cursor *c) { return c->i < c->n ? PyUnicode_READ(c->kind, c->data, c->i) : 0xFFFFFFFF; }

/* An ASCII literal at the cursor (consumed). */
static int literal(Cursor *c, const char *s) {
    for (; *s; s++, c->i++)
        if (peek(c) != (Py_UCS4)(unsigned char)*s)
            return 0;
    return 1;
}

/* A string without escapes or control characters; [start, end) is its content. */
static int string(Cursor *c, Py_ssize_t *start, Py_ssize_t *end) {
    if (!literal(c, "\""))
        return 0;
    *start = c->i;
    for (; c->i < c->n; c->i++) {
        Py_UCS4 ch = PyUnicode_READ(c->kind, c->data, c->i);
        if (ch == '"') {
            *end = c->i++;
            return 1;
        }
        if (ch == '\\' || ch < 0x20)
            return 0;
    }
    return 0;
}

static int is_digit(Py_UCS4 ch) { return ch >= '0' && ch <= '9'; }

/* 1..max digits (more fail: no shorter match lets the text go on). */
static int digits(Cursor *c, int max) {
    int count = 0;
    while (is_digit(peek(c))) {
        if (++count > max)
            return 0;
        c->i++;
    }
    return count > 0;
}

static int number(Cursor *c) {
    if (peek(c) == '-')
        c->i++;
    if (peek(c) == '0')
        c->i++;
    else if (!(peek(c) >= '1' && peek(c) <= '9') || !digits(c, 31))
        return 0;
    if (peek(c) == '.') {
        c->i++;
        if (!digits(c, 30))
            return 0;
    }
    if (peek(c) == 'e' || peek(c) == 'E') {
        c->i++;
        if (peek(c) == '+' || peek(c) == '-')
            c->i++;
        if (!digits(c, 3))
            return 0;
    }
    return 1;
}

static int scalar(Cursor *c) {
    Py_ssize_t start, end;
    switch (peek(c)) {
    case '"':
        return string(c, &start, &end);
    case 't':
        return literal(c, "true");
    case 'f':
        return literal(c, "false");
    case 'n':
        return literal(c, "null");
    default:
        return number(c);
    }
}

/* {} or {"key":scalar,...} */
static int flat_object(Cursor *c) {
    Py_ssize_t start, end;
    if (!literal(c, "{"))
        return 0;
    if (peek(c) == '}') {
        c->i++;
        return 1;
    }
    for (;;) {
        if (!string(c, &start, &end) || !literal(c, ":") || !scalar(c))
            return 0;
        if (peek(c) == '}') {
            c->i++;
            return 1;
        }
        if (!literal(c, ","))
            return 0;
    }
}

static int key_is(const Cursor *c, Py_ssize_t start, Py_ssize_t end, const char *name) {
    Py_ssize_t len = (Py_ssize_t)strlen(name);
    if (end - start != len)
        return 0;
    for (Py_ssize_t k = 0; k < len; k++)
        if (PyUnicode_READ(c->kind, c->data, start + k) != (Py_UCS4)(unsigned char)name[k])
            return 0;
    return 1;
}

static PyObject *last_method; /* the method of the last match: most events repeat it */

static PyObject *plain_notification(PyObject *self, PyObject *text) {
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "plain_notification() takes a str");
        return NULL;
    }
    Cursor c = {PyUnicode_KIND(text), PyUnicode_DATA(text), PyUnicode_GET_LENGTH(text), 0};
    enum { METHOD = 1, VERSION = 2, PARAMS = 4 };
    int seen = 0;
    Py_ssize_t m_start = 0, m_end = 0;
    if (!literal(&c, "{"))
        goto no;
    for (;;) {
        Py_ssize_t start, end;
        if (!string(&c, &start, &end) || !literal(&c, ":"))
            goto no;
        if (key_is(&c, start, end, "method") && !(seen & METHOD)) {
            if (!string(&c, &m_start, &m_end) || m_end == m_start)
                goto no;
            seen |= METHOD;
        } else if (key_is(&c, start, end, "jsonrpc") && !(seen & VERSION)) {
            if (!literal(&c, "\"2.0\""))
                goto no;
            seen |= VERSION;
        } else if (key_is(&c, start, end, "params") && !(seen & PARAMS)) {
            if (!flat_object(&c))
                goto no;
            seen |= PARAMS;
        } else {
            goto no;
        }
        if (peek(&c) == '}') {
            c.i++;
            break;
        }
        if (!literal(&c, ","))
            goto no;
    }
    if (c.i != c.n || (seen & (METHOD | VERSION)) != (METHOD | VERSION))
        goto no;
    Py_ssize_t len = m_end - m_start, k = 0;
    if (last_method != NULL && PyUnicode_GET_LENGTH(last_method) == len) {
        int kind = PyUnicode_KIND(last_method);
        const void *data = PyUnicode_DATA(last_method);
        while (k < len && PyUnicode_READ(kind, data, k) == PyUnicode_READ(c.kind, c.data, m_start + k))
            k++;
        if (k == len) {
            Py_INCREF(last_method);
            return last_method;
        }
    }
    PyObject *method = PyUnicode_Substring(text, m_start, m_end);
    if (method == NULL)
        return NULL;
    PyObject *old = last_method;
    Py_INCREF(method);
    last_method = method;
    Py_XDECREF(old);
    return method;
no:
    return PyUnicode_FromStringAndSize("", 0);
}

static PyMethodDef methods[] = {
    {"plain_notification", plain_notification, METH_O, "The method of one well-formed notification with flat params, else \"\"."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_rpcscan", NULL, -1, methods};

PyMODINIT_FUNC PyInit__rpcscan(void) { return PyModule_Create(&module); }
