/* The classic-pcap reading loop of PacketDecoder.decode_pcap (wire/packet.py), in C.
 *
 * The same loop, line for line: read each record header together with the bytes the
 * filters look at, drop another worker's frames and pure ACKs from the raw bytes, build
 * the segment tuple of the common shape (Ethernet, IPv4 without options, TCP, not a
 * fragment) here, and hand every other frame to the decoder's decode().  Built by
 * scripts/compile.py beside the mypyc modules; without it packet.py runs its Python loop.
 * Only the Python/C API's stable basics are used (3.11-3.13).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

static inline uint32_t rd32(const unsigned char *p, int little) {
    return little ? ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24)
                  : ((uint32_t)p[3] | (uint32_t)p[2] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[0] << 24);
}

/* IPv4 addresses as bytes objects, the same object for the same address: a capture has few
 * addresses, and a bytes object keeps its hash, so the TCP layer's 4-tuple lookups and
 * comparisons of later packets do not hash or compare the 4 bytes again. */
#define ADDRS 64
static uint32_t addr_keys[ADDRS];
static PyObject *addr_objs[ADDRS];

static PyObject *address(const unsigned char *p) {
    uint32_t key = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    unsigned slot = (key * 2654435761u) >> 26; /* 6 bits: ADDRS slots */
    if (addr_objs[slot] != NULL && addr_keys[slot] == key) {
        Py_INCREF(addr_objs[slot]);
        return addr_objs[slot];
    }
    PyObject *obj = PyBytes_FromStringAndSize((const char *)p, 4);
    if (obj == NULL)
        return NULL;
    Py_XDECREF(addr_objs[slot]);
    Py_INCREF(obj);
    addr_objs[slot] = obj;
    addr_keys[slot] = key;
    return obj;
}

/* A tuple of ``count`` new references (stolen; a NULL among them, from a failed call, fails
 * the whole and releases the rest).  Py_BuildValue parses its format string at every call:
 * three times the cost, twice per frame. */
static PyObject *pack(Py_ssize_t count, PyObject **items) {
    PyObject *tuple = NULL;
    for (Py_ssize_t i = 0; i < count; i++)
        if (items[i] == NULL)
            goto fail;
    tuple = PyTuple_New(count);
    if (tuple == NULL)
        goto fail;
    for (Py_ssize_t i = 0; i < count; i++)
        PyTuple_SET_ITEM(tuple, i, items[i]);
    return tuple;
fail:
    for (Py_ssize_t i = 0; i < count; i++)
        Py_XDECREF(items[i]);
    return NULL;
}

/* walk(buf, pos, n, little, hlen, unit, linktype, out, quick, k, workers, owners, acks, decode, stop)
 *   -> (pos, n, last, pure acks skipped)
 * owners: bytes of 511 worker numbers (packet._owners); acks: the container whose
 * emptiness means "pure ACKs not wanted", or None; decode: the bound decode method. */
static PyObject *walk(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t pos, n, hlen, stop;
    int little, linktype, quick, k, workers;
    double unit;
    PyObject *out, *owners_obj, *acks, *decode;
    if (!PyArg_ParseTuple(args, "y*nnpndiO!piiSOOn", &view, &pos, &n, &little, &hlen, &unit, &linktype, &PyList_Type, &out, &quick, &k, &workers, &owners_obj, &acks, &decode, &stop))
        return NULL;
    const unsigned char *buf = (const unsigned char *)view.buf;
    const Py_ssize_t size = view.len;
    const unsigned char *owners = (const unsigned char *)PyBytes_AS_STRING(owners_obj);
    const Py_ssize_t n_owners = PyBytes_GET_SIZE(owners_obj);
    Py_ssize_t last = -1, skipped = 0;
    PyObject *result = NULL;
    /* the buffer is a bytes object (the reader's chunk): slices are taken from it */
    PyObject *bufobj = view.obj;
    if (bufobj == NULL || !PyBytes_Check(bufobj)) {
        PyErr_SetString(PyExc_TypeError, "walk: buf must be bytes");
        goto done;
    }
    while (pos + hlen <= size && n < stop) {
        const unsigned char *h = buf + pos;
        uint32_t sec = rd32(h, little), frac = rd32(h + 4, little), caplen = rd32(h + 8, little);
        int plain = 0;
        if (quick && pos + 64 <= size) {
            const unsigned char *f = h + 16;
            plain = caplen >= 54 && f[12] == 8 && f[13] == 0 && f[14] == 0x45 && (f[20] & 0x1F) == 0 && f[21] == 0 && f[23] == 6 && f[46] >= 0x50;
        }
        Py_ssize_t end = pos + hlen + (Py_ssize_t)caplen;
        if (end > size)
            break;
        Py_ssize_t start = pos + hlen;
        last = pos;
        pos = end;
        n += 1;
        double t = (double)sec + (double)frac * unit;
        PyObject *seg;
        if (plain) {
            const unsigned char *f = buf + start;
            unsigned p1 = f[34], p2 = f[35], p3 = f[36], p4 = f[37], off = f[46], fl = f[47];
            if (workers > 1 && (p2 + p4 >= n_owners || owners[p2 + p4] != k))
                continue;
            Py_ssize_t total = (Py_ssize_t)f[16] << 8 | f[17], doff = (Py_ssize_t)(off >> 4) * 4;
            if (acks != Py_None && !(fl & 7) && 0 < total && total <= 20 + doff) {
                int truth = PyObject_IsTrue(acks);
                if (truth < 0)
                    goto done;
                if (!truth) {
                    skipped += 1;
                    continue;
                }
            }
            Py_ssize_t data_end = (total && start + 14 + total < end) ? start + 14 + total : end;
            Py_ssize_t lo = start + 34 + doff;
            PyObject *src = address(f + 26), *dst = src == NULL ? NULL : address(f + 30);
            if (dst == NULL) {
                Py_XDECREF(src);
                goto done;
            }
            PyObject *fields[8] = {src, dst, PyLong_FromLong((long)(p1 << 8 | p2)), PyLong_FromLong((long)(p3 << 8 | p4)),
                                   PyLong_FromUnsignedLong((unsigned long)rd32(f + 38, 0)), PyLong_FromUnsignedLong((unsigned long)rd32(f + 42, 0)), PyLong_FromLong((long)fl),
                                   PyBytes_FromStringAndSize((const char *)buf + lo, lo < data_end ? data_end - lo : (Py_ssize_t)0)};
            seg = pack(8, fields);
        } else {
            PyObject *frame = PyBytes_FromStringAndSize((const char *)buf + start, end - start);
            if (frame == NULL)
                goto done;
            seg = PyObject_CallFunction(decode, "iO", linktype, frame);
            Py_DECREF(frame);
            if (seg == Py_None) {
                Py_DECREF(seg);
                continue;
            }
        }
        if (seg == NULL)
            goto done;
        PyObject *parts[3] = {PyFloat_FromDouble(t), PyLong_FromSsize_t(n), seg};
        PyObject *item = pack(3, parts);
        if (item == NULL || PyList_Append(out, item) < 0) {
            Py_XDECREF(item);
            goto done;
        }
        Py_DECREF(item);
    }
    result = Py_BuildValue("(nnnn)", pos, n, last, skipped);
done:
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"walk", walk, METH_VARARGS, "The classic-pcap reading loop of PacketDecoder.decode_pcap."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_walk", NULL, -1, methods};

PyMODINIT_FUNC PyInit__walk(void) { return PyModule_Create(&module); }
