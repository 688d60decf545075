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

/* At an opening bracket: 1 for an empty container (consumed), 0 when items follow, -1 without it. */
static int open_items(Cursor *c, const char *open, Py_UCS4 close) {
    if (!literal(c, open))
        return -1;
    if (peek(c) == close) {
        c->i++;
        return 1;
    }
    return 0;
}

/* After a member or element: 1 at the closing bracket (consumed), 0 after a comma, -1 otherwise. */
static int after_item(Cursor *c, Py_UCS4 close) {
    if (peek(c) == close) {
        c->i++;
        return 1;
    }
    return literal(c, ",") ? 0 : -1;
}

/* {} or {"key":scalar,...} */
static int flat_object(Cursor *c) {
    Py_ssize_t start, end;
    int empty = open_items(c, "{", '}');
    if (empty != 0)
        return empty > 0;
    for (;;) {
        if (!string(c, &start, &end) || !literal(c, ":") || !scalar(c))
            return 0;
        int done = after_item(c, '}');
        if (done != 0)
            return done > 0;
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

/* ---- plain_request: the facts of one usual request, for jsonrpc.plain_request ----
 * The same strict JSON as above (no whitespace inside), but any value may sit in params, strings
 * there may hold escapes, and an id may be given.  Whatever this walk does not accept goes to
 * json.loads (jsonrpc.parse), so it may refuse more than JSON does, never accept less. */

enum { MAX_DEPTH = 32 }; /* deeper values go to json.loads, which says when they are too deep */

/* Any JSON string: escapes checked, control characters refused (json's strict mode). */
static int any_string(Cursor *c) {
    if (!literal(c, "\""))
        return 0;
    while (c->i < c->n) {
        Py_UCS4 ch = PyUnicode_READ(c->kind, c->data, c->i++);
        if (ch == '"')
            return 1;
        if (ch < 0x20)
            return 0;
        if (ch == '\\') {
            Py_UCS4 e = peek(c);
            c->i++;
            if (e == 'u') {
                for (int k = 0; k < 4; k++, c->i++) {
                    Py_UCS4 h = peek(c);
                    if (!(is_digit(h) || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F')))
                        return 0;
                }
            } else if (!(e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't')) {
                return 0;
            }
        }
    }
    return 0;
}

static int value(Cursor *c, int depth);

/* An object ({"key":value,...}) or an array ([value,...]) of any values. */
static int container(Cursor *c, int depth, int object) {
    const char *open = object ? "{" : "[";
    Py_UCS4 close = object ? '}' : ']';
    int empty = open_items(c, open, close);
    if (empty != 0)
        return empty > 0;
    for (;;) {
        if (object && (!any_string(c) || !literal(c, ":")))
            return 0;
        if (!value(c, depth + 1))
            return 0;
        int done = after_item(c, close);
        if (done != 0)
            return done > 0;
    }
}

static int value(Cursor *c, int depth) {
    if (depth > MAX_DEPTH)
        return 0;
    switch (peek(c)) {
    case '"':
        return any_string(c);
    case '{':
        return container(c, depth, 1);
    case '[':
        return container(c, depth, 0);
    default:
        return scalar(c);
    }
}

/* An id json turns into an int: -?(0|[1-9][0-9]{0,17}), not followed by a fraction or exponent. */
static int small_int(Cursor *c, long long *out) {
    int negative = peek(c) == '-';
    if (negative)
        c->i++;
    long long v = 0;
    if (peek(c) == '0') {
        c->i++;
    } else {
        if (!(peek(c) >= '1' && peek(c) <= '9'))
            return 0;
        int count = 0;
        while (is_digit(peek(c))) {
            if (++count > 18)
                return 0;
            v = v * 10 + (long long)(peek(c) - '0');
            c->i++;
        }
    }
    Py_UCS4 next = peek(c);
    if (next == '.' || next == 'e' || next == 'E')
        return 0;
    *out = negative ? -v : v;
    return 1;
}

/* params: an object; its "name" and "uri" (when plain strings) are noted; one with "_meta" is refused
 * (what it declares is read by jsonrpc.parse's path). */
static int params_object(Cursor *c, Py_ssize_t name[2], Py_ssize_t uri[2]) {
    int empty = open_items(c, "{", '}');
    if (empty != 0)
        return empty > 0;
    for (;;) {
        Py_ssize_t start, end;
        if (!string(c, &start, &end) || !literal(c, ":"))
            return 0;
        Py_ssize_t *slot = key_is(c, start, end, "name") ? name : key_is(c, start, end, "uri") ? uri : NULL;
        if (key_is(c, start, end, "_meta"))
            return 0;
        if (slot != NULL) {
            if (slot[0] != -2)
                return 0; /* a repeated key: json keeps the last one, left to it */
            slot[0] = -1;
            if (peek(c) == '"') {
                if (!string(c, &slot[0], &slot[1]))
                    return 0;
            } else if (!value(c, 1)) {
                return 0;
            }
        } else if (!value(c, 1)) {
            return 0;
        }
        int done = after_item(c, '}');
        if (done != 0)
            return done > 0;
    }
}

static PyObject *substring_or_none(PyObject *text, const Py_ssize_t span[2]) {
    if (span[0] < 0)
        Py_RETURN_NONE;
    return PyUnicode_Substring(text, span[0], span[1]);
}

static PyObject *plain_request(PyObject *self, PyObject *text) {
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "plain_request() takes a str");
        return NULL;
    }
    Cursor c = {PyUnicode_KIND(text), PyUnicode_DATA(text), PyUnicode_GET_LENGTH(text), 0};
    enum { METHOD = 1, VERSION = 2, PARAMS = 4, ID = 8 };
    int seen = 0, id_kind = 0; /* id_kind: 0 null, 1 int, 2 string */
    long long id_int = 0;
    Py_ssize_t m_start = 0, m_end = 0, id_span[2] = {0, 0};
    Py_ssize_t name[2] = {-2, 0}, uri[2] = {-2, 0}; /* -2: not seen, -1: not a plain string */
    if (!literal(&c, "{"))
        Py_RETURN_NONE;
    for (;;) {
        Py_ssize_t start, end;
        if (!string(&c, &start, &end) || !literal(&c, ":"))
            Py_RETURN_NONE;
        if (key_is(&c, start, end, "method") && !(seen & METHOD)) {
            if (!string(&c, &m_start, &m_end))
                Py_RETURN_NONE;
            seen |= METHOD;
        } else if (key_is(&c, start, end, "jsonrpc") && !(seen & VERSION)) {
            if (!literal(&c, "\"2.0\""))
                Py_RETURN_NONE;
            seen |= VERSION;
        } else if (key_is(&c, start, end, "params") && !(seen & PARAMS)) {
            if (!params_object(&c, name, uri))
                Py_RETURN_NONE;
            seen |= PARAMS;
        } else if (key_is(&c, start, end, "id") && !(seen & ID)) {
            Py_UCS4 first = peek(&c);
            if (first == '"') {
                if (!string(&c, &id_span[0], &id_span[1]))
                    Py_RETURN_NONE;
                id_kind = 2;
            } else if (first == 'n') {
                if (!literal(&c, "null"))
                    Py_RETURN_NONE;
            } else {
                if (!small_int(&c, &id_int))
                    Py_RETURN_NONE;
                id_kind = 1;
            }
            seen |= ID;
        } else {
            Py_RETURN_NONE;
        }
        if (peek(&c) == '}') {
            c.i++;
            break;
        }
        if (!literal(&c, ","))
            Py_RETURN_NONE;
    }
    for (; c.i < c.n; c.i++) { /* JSON whitespace may follow, as json.loads allows */
        Py_UCS4 ch = PyUnicode_READ(c.kind, c.data, c.i);
        if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r')
            Py_RETURN_NONE;
    }
    if ((seen & (METHOD | VERSION)) != (METHOD | VERSION))
        Py_RETURN_NONE;
    PyObject *method = PyUnicode_Substring(text, m_start, m_end);
    PyObject *id = id_kind == 1 ? PyLong_FromLongLong(id_int) : id_kind == 2 ? PyUnicode_Substring(text, id_span[0], id_span[1]) : Py_NewRef(Py_None);
    PyObject *name_text = substring_or_none(text, name);
    PyObject *uri_text = substring_or_none(text, uri);
    PyObject *out = NULL;
    if (method != NULL && id != NULL && name_text != NULL && uri_text != NULL)
        out = PyTuple_Pack(5, method, id, (seen & ID) ? Py_True : Py_False, name_text, uri_text);
    Py_XDECREF(method);
    Py_XDECREF(id);
    Py_XDECREF(name_text);
    Py_XDECREF(uri_text);
    return out;
}

static PyMethodDef methods[] = {
    {"plain_notification", plain_notification, METH_O, "The method of one well-formed notification with flat params, else \"\"."},
    {"plain_request", plain_request, METH_O, "(method, id, has id, params.name, params.uri) of one usual JSON-RPC request or notification, else None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_rpcscan", NULL, -1, methods};

PyMODINIT_FUNC PyInit__rpcscan(void) { return PyModule_Create(&module); }
