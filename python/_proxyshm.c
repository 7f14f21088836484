/*
 * _proxyshm.c: the CPython extension module proxyshm._proxyshm over
 * libproxyshm. It owns the Python types Store, Key, View, Future and
 * Stream, the reservation buffer behind Future.reserve() and
 * Stream.reserve(), and the mapping of the library's negative errno values
 * onto OSError. The pure-Python parts (pickling helpers, the per-process
 * cache of attached stores, resolve(), the iterator of Stream.reader())
 * live in proxyshm/__init__.py and call into this module.
 *
 * Lifetimes. A View and a reservation hold a strong reference to their
 * Store and count as one of its "uses"; so does every call that runs with
 * the GIL released. Store.close() forbids new operations at once but
 * detaches (pxs_close) only when the last use ends, so no pointer into the
 * segment handed to Python can outlive the mapping.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <errno.h>
#include <stdbool.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <proxyshm.h>

/* A wait sleeps in slices this long, between which it checks for signals
 * (Ctrl-C) with the GIL held. The library's futex wait wakes at once on a
 * set, so the slice bounds only how late a KeyboardInterrupt is seen. */
#define WAIT_SLICE_MS 50
/* Copies at least this large run with the GIL released. */
#define NOGIL_COPY 65536

typedef struct {
	PyObject *invalid_argument; /* proxyshm.InvalidArgumentError */
	PyTypeObject *store_type, *key_type, *view_type, *future_type,
		*reservation_type, *stream_type;
} module_state;

static module_state *state_of_type(PyTypeObject *t);

/* ------------------------------------------------------------------ */
/* Errors                                                              */

/* The OSError for the library's return value @p rc (< 0): errno -rc,
 * message pxs_strerror(rc). OSError(errno, msg) picks the builtin
 * subclass (TimeoutError, FileNotFoundError, ...); EINVAL gets
 * InvalidArgumentError, an OSError that is also a ValueError. A new
 * reference, or NULL with an exception set. */
static PyObject *pxs_exception(module_state *st, int rc)
{
	PyObject *cls = (rc == -EINVAL && st) ? st->invalid_argument :
						PyExc_OSError;
	return PyObject_CallFunction(cls, "is", -rc, pxs_strerror(rc));
}

static PyObject *raise_exc(PyObject *exc)
{
	if (exc) {
		PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
		Py_DECREF(exc);
	}
	return NULL;
}

/* Raise pxs_exception(st, rc). Returns NULL. */
static PyObject *raise_pxs(module_state *st, int rc)
{
	return raise_exc(pxs_exception(st, rc));
}

/* As raise_pxs(), with the attribute .index of the exception set to
 * @p index, or to None when @p index < 0 (an error of no single key). */
static PyObject *raise_pxs_index(module_state *st, int rc, Py_ssize_t index)
{
	PyObject *exc = pxs_exception(st, rc);
	if (!exc)
		return NULL;
	PyObject *i = index < 0 ? Py_NewRef(Py_None) : PyLong_FromSsize_t(index);
	if (!i || PyObject_SetAttrString(exc, "index", i) < 0) {
		Py_XDECREF(i);
		Py_DECREF(exc);
		return NULL;
	}
	Py_DECREF(i);
	return raise_exc(exc);
}

/* ------------------------------------------------------------------ */
/* Key                                                                 */

typedef struct {
	PyObject_HEAD
	pxs_key k;
} KeyObject;

static PyObject *key_new_from(PyTypeObject *t, pxs_key k)
{
	KeyObject *o = (KeyObject *)t->tp_alloc(t, 0);
	if (o)
		o->k = k;
	return (PyObject *)o;
}

/* Parse a Key or a 32-hex-digit str into @p out: 0, the library's
 * negative errno for a malformed str (nothing raised), or KEY_RAISED with
 * a Python exception set (a wrong type, a str that is not UTF-8). */
#define KEY_RAISED 1
static int key_parse(module_state *st, PyObject *obj, pxs_key *out)
{
	if (PyObject_TypeCheck(obj, st->key_type)) {
		*out = ((KeyObject *)obj)->k;
		return 0;
	}
	if (PyUnicode_Check(obj)) {
		const char *s = PyUnicode_AsUTF8(obj);
		return s ? pxs_key_parse(s, out) : KEY_RAISED;
	}
	PyErr_Format(PyExc_TypeError, "a Key or a str of 32 hex digits is required, not %.100s",
		     Py_TYPE(obj)->tp_name);
	return KEY_RAISED;
}

/* key_parse(), raising for every failure: 0, or -1 with an exception set. */
static int key_arg(module_state *st, PyObject *obj, pxs_key *out)
{
	int rc = key_parse(st, obj, out);
	if (rc < 0)
		raise_pxs(st, rc);
	return rc == 0 ? 0 : -1;
}

static PyObject *Key_new(PyTypeObject *t, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "hex", NULL };
	PyObject *arg;
	pxs_key k;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O:Key", kwlist, &arg))
		return NULL;
	if (key_arg(state_of_type(t), arg, &k) < 0)
		return NULL;
	return key_new_from(t, k);
}

static PyObject *Key_from_name(PyObject *cls, PyObject *name)
{
	Py_buffer b;
	pxs_key k;
	if (PyUnicode_Check(name)) {
		Py_ssize_t n;
		const char *s = PyUnicode_AsUTF8AndSize(name, &n);
		if (!s)
			return NULL;
		k = pxs_key_from_name(s, (size_t)n);
	} else {
		if (PyObject_GetBuffer(name, &b, PyBUF_SIMPLE) < 0)
			return NULL;
		k = pxs_key_from_name(b.buf, (size_t)b.len);
		PyBuffer_Release(&b);
	}
	return key_new_from((PyTypeObject *)cls, k);
}

static PyObject *Key_str(PyObject *self)
{
	char buf[PXS_KEY_STRLEN];
	pxs_key_format(((KeyObject *)self)->k, buf);
	return PyUnicode_FromString(buf);
}

static PyObject *Key_repr(PyObject *self)
{
	char buf[PXS_KEY_STRLEN];
	pxs_key_format(((KeyObject *)self)->k, buf);
	return PyUnicode_FromFormat("Key('%s')", buf);
}

static Py_hash_t Key_hash(PyObject *self)
{
	pxs_key k = ((KeyObject *)self)->k;
	Py_hash_t h = (Py_hash_t)(k.hi ^ (k.lo * 0x9e3779b97f4a7c15ull));
	return h == -1 ? -2 : h;
}

static PyObject *Key_richcompare(PyObject *a, PyObject *b, int op)
{
	if (!PyObject_TypeCheck(b, Py_TYPE(a)) && !PyObject_TypeCheck(a, Py_TYPE(b)))
		Py_RETURN_NOTIMPLEMENTED;
	pxs_key x = ((KeyObject *)a)->k, y = ((KeyObject *)b)->k;
	int c = x.hi != y.hi ? (x.hi < y.hi ? -1 : 1) :
			       (x.lo != y.lo ? (x.lo < y.lo ? -1 : 1) : 0);
	Py_RETURN_RICHCOMPARE(c, 0, op);
}

static PyObject *Key_reduce(PyObject *self, PyObject *unused)
{
	PyObject *s = Key_str(self);
	if (!s)
		return NULL;
	return Py_BuildValue("(O(N))", (PyObject *)Py_TYPE(self), s);
}

static PyMethodDef Key_methods[] = {
	{ "from_name", Key_from_name, METH_O | METH_CLASS,
	  "from_name(name, /)\n--\n\nDerive the key of a name (str, encoded as UTF-8, or bytes-like) with\n"
	  "XXH3-128, as pxs_key_from_name(): unrelated processes agree on it." },
	{ "__reduce__", Key_reduce, METH_NOARGS, NULL },
	{ NULL, NULL, 0, NULL }
};

static PyType_Slot Key_slots[] = {
	{ Py_tp_doc, "Key(hex, /)\n--\n\nA 128-bit key, immutable and hashable. str(k) is its 32 lowercase hex\n"
		     "digits; Key(hex) parses them (the all-zero key is invalid)." },
	{ Py_tp_new, Key_new },
	{ Py_tp_str, Key_str },
	{ Py_tp_repr, Key_repr },
	{ Py_tp_hash, Key_hash },
	{ Py_tp_richcompare, Key_richcompare },
	{ Py_tp_methods, Key_methods },
	{ 0, NULL }
};

static PyType_Spec Key_spec = { "proxyshm.Key", sizeof(KeyObject), 0,
				Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE, Key_slots };

/* ------------------------------------------------------------------ */
/* Store                                                               */

typedef struct ReservationObject ReservationObject;

typedef struct {
	PyObject_HEAD
	pxs_store *h;       /* NULL once detached */
	PyObject *name;     /* str, with its leading '/' */
	int closed;         /* close() called: no new operations */
	Py_ssize_t uses;    /* views, reservations and GIL-free calls */
	ReservationObject *resv; /* live reservations (borrowed; each unlinks
	                            itself when it goes) */
	PyObject *weakrefs;
} StoreObject;

static void store_detach_if_idle(StoreObject *s)
{
	if (s->closed && s->uses == 0 && s->h) {
		pxs_close(s->h);
		s->h = NULL;
	}
}

static void store_unuse(StoreObject *s)
{
	s->uses--;
	store_detach_if_idle(s);
}

/* 0 if @p s is open, else -1 with ValueError set. */
static int store_check(StoreObject *s)
{
	if (s->closed || !s->h) {
		PyErr_SetString(PyExc_ValueError, "operation on a closed Store");
		return -1;
	}
	return 0;
}

/* The prefix of a Redis store's name (docs/python.md, the header's
 * "Redis stores"): such a name is the library's as given. */
#define REDIS_SCHEME "redis://"

/* The library's name for the str @p name: a Redis store's name as it is, a
 * segment's with its leading '/' (added when missing, as "app" for
 * "/app"). A new reference, or NULL with an exception set. */
static PyObject *store_name(PyObject *name)
{
	const char *c = PyUnicode_AsUTF8(name);
	if (!c)
		return NULL;
	if (c[0] == '/' || strncmp(c, REDIS_SCHEME, strlen(REDIS_SCHEME)) == 0)
		return Py_NewRef(name);
	return PyUnicode_FromFormat("/%U", name);
}

static int Store_init(PyObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "name", "size", "capacity", "create", "exclusive",
				  "mode", "spin_us", NULL };
	StoreObject *s = (StoreObject *)self;
	PyObject *name;
	Py_ssize_t size = 0;
	unsigned long capacity = 0, spin_us = 0;
	int create = 0, excl = 0, mode = 0600;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "U|$nkppik:Store", kwlist, &name, &size,
					 &capacity, &create, &excl, &mode, &spin_us))
		return -1;
	module_state *st = state_of_type(Py_TYPE(self));
	if (s->h) {
		PyErr_SetString(PyExc_RuntimeError, "Store is already initialised");
		return -1;
	}
	if (size < 0 || capacity > UINT32_MAX || spin_us > UINT32_MAX || mode < 0 ||
	    mode > 07777)
		return raise_pxs(st, -EINVAL), -1;
	PyObject *full = store_name(name);
	if (!full)
		return -1;
	const char *cname = PyUnicode_AsUTF8(full);
	if (!cname) {
		Py_DECREF(full);
		return -1;
	}
	pxs_options o = { 0 };
	o.size = (size_t)size;
	o.capacity = (uint32_t)capacity;
	o.mode = (mode_t)mode;
	o.flags = (create ? PXS_CREATE : 0) | (excl ? PXS_EXCL : 0);
	o.spin_us = (uint32_t)spin_us;
	pxs_store *h = NULL;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = pxs_open(cname, &o, &h);
	Py_END_ALLOW_THREADS
	if (rc < 0) {
		Py_DECREF(full);
		return raise_pxs(st, rc), -1;
	}
	s->h = h;
	Py_XSETREF(s->name, full);
	s->closed = 0;
	return 0;
}

static void Store_dealloc(PyObject *self)
{
	StoreObject *s = (StoreObject *)self;
	PyTypeObject *t = Py_TYPE(self);
	if (s->weakrefs)
		PyObject_ClearWeakRefs(self);
	if (s->h)
		pxs_close(s->h); /* nothing uses it: views hold a reference */
	Py_XDECREF(s->name);
	t->tp_free(self);
	Py_DECREF(t);
}

static PyObject *Store_close(PyObject *self, PyObject *unused)
{
	StoreObject *s = (StoreObject *)self;
	s->closed = 1;
	store_detach_if_idle(s);
	Py_RETURN_NONE;
}

static PyObject *Store_enter(PyObject *self, PyObject *unused)
{
	if (store_check((StoreObject *)self) < 0)
		return NULL;
	return Py_NewRef(self);
}

static PyObject *Store_exit(PyObject *self, PyObject *args)
{
	return Store_close(self, NULL);
}

static PyObject *Store_get_name(PyObject *self, void *c)
{
	StoreObject *s = (StoreObject *)self;
	if (!s->name) {
		PyErr_SetString(PyExc_ValueError, "Store is not initialised");
		return NULL;
	}
	return Py_NewRef(s->name);
}

static PyObject *Store_get_closed(PyObject *self, void *c)
{
	return PyBool_FromLong(((StoreObject *)self)->closed || !((StoreObject *)self)->h);
}

/* Run a copy of @p n bytes with or without the GIL. */
#define MAYBE_NOGIL(s, n, stmt)                          \
	do {                                             \
		if ((n) >= NOGIL_COPY) {                 \
			(s)->uses++;                     \
			Py_BEGIN_ALLOW_THREADS stmt;     \
			Py_END_ALLOW_THREADS             \
			store_unuse(s);                  \
		} else {                                 \
			stmt;                            \
		}                                        \
	} while (0)

static PyObject *Store_put(PyObject *self, PyObject *data)
{
	StoreObject *s = (StoreObject *)self;
	module_state *st = state_of_type(Py_TYPE(self));
	Py_buffer b;
	pxs_key k;
	int rc;
	if (store_check(s) < 0 || PyObject_GetBuffer(data, &b, PyBUF_C_CONTIGUOUS) < 0)
		return NULL;
	MAYBE_NOGIL(s, b.len, rc = pxs_put(s->h, b.buf, (size_t)b.len, &k));
	PyBuffer_Release(&b);
	if (rc < 0)
		return raise_pxs(st, rc);
	return key_new_from(st->key_type, k);
}

static PyObject *Store_put_at(PyObject *self, PyObject *const *args, Py_ssize_t n)
{
	StoreObject *s = (StoreObject *)self;
	module_state *st = state_of_type(Py_TYPE(self));
	Py_buffer b;
	pxs_key k;
	int rc;
	if (n != 2) {
		PyErr_SetString(PyExc_TypeError, "put_at(key, data) takes 2 arguments");
		return NULL;
	}
	if (store_check(s) < 0 || key_arg(st, args[0], &k) < 0 ||
	    PyObject_GetBuffer(args[1], &b, PyBUF_C_CONTIGUOUS) < 0)
		return NULL;
	MAYBE_NOGIL(s, b.len, rc = pxs_put_at(s->h, k, b.buf, (size_t)b.len));
	PyBuffer_Release(&b);
	if (rc < 0)
		return raise_pxs(st, rc);
	Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ */
/* View                                                                */

typedef struct {
	PyObject_HEAD
	StoreObject *store; /* NULL once released */
	pxs_view v;
	pxs_key key;
	Py_ssize_t exports;
	PyObject *weakrefs;
} ViewObject;

/* Wrap the pinned @p v of @p s in a View (which then owns the pin). */
static PyObject *view_wrap(StoreObject *s, pxs_key key, pxs_view *v)
{
	module_state *st = state_of_type(Py_TYPE(s));
	ViewObject *o = PyObject_New(ViewObject, st->view_type);
	if (!o) {
		pxs_release(s->h, v);
		return NULL;
	}
	o->store = (StoreObject *)Py_NewRef((PyObject *)s);
	o->v = *v;
	o->key = key;
	o->exports = 0;
	o->weakrefs = NULL;
	s->uses++;
	return (PyObject *)o;
}

static int view_unpin(ViewObject *o)
{
	StoreObject *s = o->store;
	int rc = 0;
	if (!s)
		return 0;
	if (s->h)
		rc = pxs_release(s->h, &o->v);
	o->store = NULL;
	memset(&o->v, 0, sizeof o->v);
	store_unuse(s);
	Py_DECREF(s);
	return rc;
}

static void View_dealloc(PyObject *self)
{
	ViewObject *o = (ViewObject *)self;
	PyTypeObject *t = Py_TYPE(self);
	if (o->weakrefs)
		PyObject_ClearWeakRefs(self);
	view_unpin(o);
	PyObject_Free(self);
	Py_DECREF(t);
}

static PyObject *View_release(PyObject *self, PyObject *unused)
{
	ViewObject *o = (ViewObject *)self;
	if (o->exports > 0) {
		PyErr_Format(PyExc_BufferError,
			     "cannot release a View while %zd buffer(s) of it exist "
			     "(release the memoryview or delete the array first)",
			     o->exports);
		return NULL;
	}
	int rc = view_unpin(o);
	if (rc < 0)
		return raise_pxs(state_of_type(Py_TYPE(self)), rc);
	Py_RETURN_NONE;
}

static int view_check(ViewObject *o)
{
	if (!o->store) {
		PyErr_SetString(PyExc_ValueError, "operation on a released View");
		return -1;
	}
	return 0;
}

static int View_getbuffer(PyObject *self, Py_buffer *view, int flags)
{
	ViewObject *o = (ViewObject *)self;
	if (view_check(o) < 0)
		return -1;
	if (PyBuffer_FillInfo(view, self, (void *)o->v.data, (Py_ssize_t)o->v.size, 1,
			      flags) < 0)
		return -1;
	o->exports++;
	return 0;
}

static void View_releasebuffer(PyObject *self, Py_buffer *view)
{
	((ViewObject *)self)->exports--;
}

static Py_ssize_t View_len(PyObject *self)
{
	ViewObject *o = (ViewObject *)self;
	if (view_check(o) < 0)
		return -1;
	return (Py_ssize_t)o->v.size;
}

static PyObject *View_bytes(PyObject *self, PyObject *unused)
{
	ViewObject *o = (ViewObject *)self;
	if (view_check(o) < 0)
		return NULL;
	PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)o->v.size);
	if (!b)
		return NULL;
	MAYBE_NOGIL(o->store, o->v.size, memcpy(PyBytes_AS_STRING(b), o->v.data, o->v.size));
	return b;
}

static PyObject *View_enter(PyObject *self, PyObject *unused)
{
	if (view_check((ViewObject *)self) < 0)
		return NULL;
	return Py_NewRef(self);
}

static PyObject *View_exit(PyObject *self, PyObject *args)
{
	return View_release(self, NULL);
}

static PyObject *View_get_key(PyObject *self, void *c)
{
	return key_new_from(state_of_type(Py_TYPE(self))->key_type, ((ViewObject *)self)->key);
}

static PyObject *View_get_released(PyObject *self, void *c)
{
	return PyBool_FromLong(((ViewObject *)self)->store == NULL);
}

static PyObject *View_repr(PyObject *self)
{
	ViewObject *o = (ViewObject *)self;
	char buf[PXS_KEY_STRLEN];
	pxs_key_format(o->key, buf);
	if (!o->store)
		return PyUnicode_FromFormat("<proxyshm.View %s released>", buf);
	return PyUnicode_FromFormat("<proxyshm.View %s %zu bytes>", buf, o->v.size);
}

static PyMethodDef View_methods[] = {
	{ "release", View_release, METH_NOARGS,
	  "release()\n--\n\nUnpin the value. Raises BufferError (and keeps the pin) while a\n"
	  "memoryview or array still exports the View's buffer; a second call does nothing." },
	{ "__bytes__", View_bytes, METH_NOARGS, "A copy of the value." },
	{ "tobytes", View_bytes, METH_NOARGS, "tobytes()\n--\n\nA copy of the value as bytes." },
	{ "__enter__", View_enter, METH_NOARGS, NULL },
	{ "__exit__", View_exit, METH_VARARGS, NULL },
	{ NULL, NULL, 0, NULL }
};

static PyGetSetDef View_getset[] = {
	{ "key", View_get_key, NULL, "The key the value was read under.", NULL },
	{ "released", View_get_released, NULL, "True once release() succeeded.", NULL },
	{ NULL, NULL, NULL, NULL, NULL }
};

static PyMemberDef View_members[] = {
	{ "__weaklistoffset__", T_PYSSIZET, offsetof(ViewObject, weakrefs), READONLY, NULL },
	{ NULL, 0, 0, 0, NULL }
};

static PyType_Slot View_slots[] = {
	{ Py_tp_doc, "A value in the segment, in place and pinned (from Store.get(),\n"
		     "Future.result() or resolve()). It exports a read-only buffer, so\n"
		     "memoryview(v) and numpy.frombuffer(v) do not copy; bytes(v) copies.\n"
		     "The pin lasts until release() or until the View is garbage-collected.\n"
		     "A context manager: `with store.get(k) as v:` releases on exit.\n"
		     "On a Redis store a View is a private copy of the value in this\n"
		     "process (read-only as well), held until release()." },
	{ Py_tp_dealloc, View_dealloc },
	{ Py_tp_repr, View_repr },
	{ Py_tp_methods, View_methods },
	{ Py_tp_getset, View_getset },
	{ Py_tp_members, View_members },
	{ Py_mp_length, View_len },
	{ Py_bf_getbuffer, View_getbuffer },
	{ Py_bf_releasebuffer, View_releasebuffer },
	{ 0, NULL }
};

static PyType_Spec View_spec = { "proxyshm.View", sizeof(ViewObject), 0,
				 Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE |
					 Py_TPFLAGS_DISALLOW_INSTANTIATION,
				 View_slots };

/* ------------------------------------------------------------------ */
/* Store: reading, waiting                                             */

static PyObject *Store_get(PyObject *self, PyObject *key)
{
	StoreObject *s = (StoreObject *)self;
	module_state *st = state_of_type(Py_TYPE(self));
	pxs_key k;
	pxs_view v;
	if (store_check(s) < 0 || key_arg(st, key, &k) < 0)
		return NULL;
	int rc = pxs_get(s->h, k, &v);
	if (rc < 0)
		return raise_pxs(st, rc);
	return view_wrap(s, k, &v);
}

/* Convert seconds (a number >= 0, or None) to milliseconds, rounded up;
 * None and anything beyond 1e12 s (31,000 years) become -1, which both
 * the waits ("for ever") and pxs_expire() ("no expiry") read as never.
 * 0, or -1 with ValueError (naming @p what) or TypeError set. */
static int seconds_arg(PyObject *t, const char *what, long *ms)
{
	if (!t || t == Py_None) {
		*ms = -1;
		return 0;
	}
	double d = PyFloat_AsDouble(t);
	if (d == -1.0 && PyErr_Occurred())
		return -1;
	if (!(d >= 0)) {
		PyErr_Format(PyExc_ValueError, "%s must be None or a number >= 0", what);
		return -1;
	}
	*ms = d > 1e12 ? -1 : (long)ceil(d * 1000.0);
	return 0;
}

static int timeout_arg(PyObject *t, long *ms)
{
	return seconds_arg(t, "timeout", ms);
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * Waiting. The library's waits (pxs_future_wait(), pxs_future_wait_any())
 * sleep on futex words and are woken at once by a set, but they restart
 * after signals (they never return EINTR), so a Ctrl-C would go unseen
 * until the value came. sliced_wait() therefore runs a wait in slices of
 * WAIT_SLICE_MS with the GIL released, and between slices takes the GIL
 * and runs PyErr_CheckSignals(): a KeyboardInterrupt ends the wait within
 * a slice (plus the time to take the GIL back), with nothing pinned. Other
 * threads run meanwhile. A slice that ends without a value costs one call
 * into the library, 20 a second: no measurable CPU.
 *
 * The Store counts as used during each slice, so that a close() from
 * another thread cannot unmap the segment under the sleeping call.
 */
#define WAIT_INTERRUPTED 1

typedef int (*wait_fn)(pxs_store *h, void *arg, long slice_ms);

/* Run @p fn(h, arg, slice) until it returns anything but -ETIMEDOUT or
 * @p timeout_ms (< 0: for ever) has passed. Returns fn's last result, or
 * WAIT_INTERRUPTED with the signal handler's exception set. On success the
 * caller wraps the pinned view (which keeps the Store in use); on any
 * other result the Store is detached here if close() came meanwhile. */
static int sliced_wait(StoreObject *s, long timeout_ms, wait_fn fn, void *arg)
{
	int64_t deadline = timeout_ms < 0 ? -1 : now_ns() + (int64_t)timeout_ms * 1000000;
	int rc;
	for (int first = 1;; first = 0) {
		long slice = WAIT_SLICE_MS;
		if (deadline >= 0) {
			int64_t left = deadline - now_ns();
			if (left <= 0 && !first) {
				rc = -ETIMEDOUT; /* never a 0 slice ("only check") late */
				break;
			}
			left = left <= 0 ? 0 : (left + 999999) / 1000000;
			slice = left < slice ? (long)left : slice;
		}
		s->uses++;
		Py_BEGIN_ALLOW_THREADS
		rc = fn(s->h, arg, slice);
		Py_END_ALLOW_THREADS
		s->uses--;
		if (rc != -ETIMEDOUT || (deadline >= 0 && (slice == 0 || now_ns() >= deadline)))
			break;
		if (PyErr_CheckSignals() < 0) {
			rc = WAIT_INTERRUPTED;
			break;
		}
	}
	if (rc != 0)
		store_detach_if_idle(s);
	return rc;
}

/*
 * Slices and cancellation. A wait is told of an eviction or expiry that
 * happens while it sleeps (-ECANCELED), but not of one that happens
 * between two slices: the next slice starts on an absent key, which
 * pxs_future_wait() takes for one not created yet (it would wait for it
 * to appear) and pxs_future_wait_any() reports as -ENOENT. So each slice
 * remembers whether the key was there: a key seen present and then absent
 * went away while waited on, which is -ECANCELED, as the library says
 * within one call. (pxs_future_wait_any() does not end a sleep at a
 * watched future's expiry; the slices see it gone within WAIT_SLICE_MS.)
 */
struct wait_one {
	pxs_key key;
	pxs_view v;
	bool present; /* the key existed at the start of some slice */
};

static int wait_one_fn(pxs_store *h, void *arg, long slice_ms)
{
	struct wait_one *w = arg;
	bool absent = pxs_future_done(h, w->key) == -ENOENT;
	if (absent && w->present)
		return -ECANCELED;
	w->present = !absent;
	return pxs_future_wait(h, w->key, slice_ms, &w->v);
}

static PyObject *store_wait(StoreObject *s, pxs_key k, long timeout_ms)
{
	struct wait_one w = { .key = k };
	int rc = sliced_wait(s, timeout_ms, wait_one_fn, &w);
	if (rc == WAIT_INTERRUPTED)
		return NULL;
	if (rc < 0)
		return raise_pxs(state_of_type(Py_TYPE(s)), rc);
	return view_wrap(s, k, &w.v);
}

struct wait_any {
	pxs_key keys[PXS_WAIT_ANY_MAX];
	size_t n, which;
	pxs_view v;
	bool later; /* a slice ran before: every key was present then */
};

static int wait_any_fn(pxs_store *h, void *arg, long slice_ms)
{
	struct wait_any *w = arg;
	int rc = pxs_future_wait_any(h, w->keys, w->n, slice_ms, &w->which, &w->v);
	if (rc == -ENOENT && w->later)
		rc = -ECANCELED;
	w->later = true;
	return rc;
}

/*
 * Store.wait_any(keys, timeout=None) -> (index, View). The keys are
 * parsed before anything waits, so a bad one changes nothing; every
 * OSError it raises carries .index: the position of the key it is about
 * (a malformed key, or one that is absent, cancelled or abandoned), or
 * None when it is about none of them (a timeout, a bad count, ENOSYS).
 */
static PyObject *Store_wait_any(PyObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "keys", "timeout", NULL };
	StoreObject *s = (StoreObject *)self;
	module_state *st = state_of_type(Py_TYPE(self));
	PyObject *keys, *timeout = Py_None, *seq, *view, *res = NULL;
	struct wait_any *w = NULL;
	long ms;
	int rc;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O:wait_any", kwlist, &keys, &timeout))
		return NULL;
	if (store_check(s) < 0 || timeout_arg(timeout, &ms) < 0)
		return NULL;
	seq = PySequence_Fast(keys, "wait_any() takes a sequence of keys");
	if (!seq)
		return NULL;
	Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
	if (n == 0 || n > PXS_WAIT_ANY_MAX) {
		raise_pxs_index(st, -EINVAL, -1); /* as the library would */
		goto out;
	}
	w = PyMem_Calloc(1, sizeof *w);
	if (!w) {
		PyErr_NoMemory();
		goto out;
	}
	w->n = (size_t)n;
	w->which = w->n; /* the library leaves it so on -EINVAL */
	for (Py_ssize_t i = 0; i < n; i++) {
		rc = key_parse(st, PySequence_Fast_GET_ITEM(seq, i), &w->keys[i]);
		if (rc < 0)
			raise_pxs_index(st, rc, i);
		if (rc != 0)
			goto out;
	}
	rc = sliced_wait(s, ms, wait_any_fn, w);
	if (rc == WAIT_INTERRUPTED)
		goto out;
	if (rc < 0) {
		raise_pxs_index(st, rc, w->which < w->n ? (Py_ssize_t)w->which : -1);
		goto out;
	}
	view = view_wrap(s, w->keys[w->which], &w->v);
	if (view)
		res = Py_BuildValue("(nN)", (Py_ssize_t)w->which, view);
out:
	PyMem_Free(w);
	Py_DECREF(seq);
	return res;
}

static PyObject *Store_wait(PyObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "key", "timeout", NULL };
	StoreObject *s = (StoreObject *)self;
	PyObject *key, *timeout = Py_None;
	pxs_key k;
	long ms;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O:wait", kwlist, &key, &timeout))
		return NULL;
	if (store_check(s) < 0 || key_arg(state_of_type(Py_TYPE(self)), key, &k) < 0 ||
	    timeout_arg(timeout, &ms) < 0)
		return NULL;
	return store_wait(s, k, ms);
}

/* Store.exists, evict, done: a call on a key returning an int. */
static PyObject *store_keycall(PyObject *self, PyObject *key, int (*fn)(pxs_store *, pxs_key),
			       int as_bool)
{
	StoreObject *s = (StoreObject *)self;
	module_state *st = state_of_type(Py_TYPE(self));
	pxs_key k;
	if (store_check(s) < 0 || key_arg(st, key, &k) < 0)
		return NULL;
	int rc = fn(s->h, k);
	if (rc < 0)
		return raise_pxs(st, rc);
	if (as_bool)
		return PyBool_FromLong(rc);
	Py_RETURN_NONE;
}

static PyObject *Store_exists(PyObject *self, PyObject *key)
{
	return store_keycall(self, key, pxs_exists, 1);
}

static PyObject *Store_evict(PyObject *self, PyObject *key)
{
	return store_keycall(self, key, pxs_evict, 0);
}

static PyObject *Store_expire(PyObject *self, PyObject *const *args, Py_ssize_t n)
{
	StoreObject *s = (StoreObject *)self;
	module_state *st = state_of_type(Py_TYPE(self));
	pxs_key k;
	long ms;
	if (n != 2) {
		PyErr_SetString(PyExc_TypeError, "expire(key, seconds) takes 2 arguments");
		return NULL;
	}
	if (store_check(s) < 0 || key_arg(st, args[0], &k) < 0 ||
	    seconds_arg(args[1], "seconds", &ms) < 0)
		return NULL;
	int rc = pxs_expire(s->h, k, ms);
	if (rc < 0)
		return raise_pxs(st, rc);
	Py_RETURN_NONE;
}

/* Store.list()'s names of the header's pxs_state values. */
static const char *const state_names[] = {
	[PXS_STATE_VALUE] = "value",         [PXS_STATE_PENDING] = "pending",
	[PXS_STATE_RESERVED] = "reserved",   [PXS_STATE_ABANDONED] = "abandoned",
	[PXS_STATE_EVICTED] = "evicted",
};

/* One pxs_entry as the dict Store.list() returns. */
static PyObject *entry_dict(module_state *st, const pxs_entry *e)
{
	size_t i = (size_t)e->state;
	const char *state = i < sizeof state_names / sizeof *state_names ? state_names[i] : NULL;
	if (!state) /* outside the header's enum: not a segment we know */
		return raise_pxs(st, -EPROTO);
	PyObject *ttl = e->ttl_ms < 0 ? Py_NewRef(Py_None) : PyFloat_FromDouble(e->ttl_ms / 1e3);
	if (!ttl)
		return NULL;
	return Py_BuildValue("{sNsssKsIsIsisOsdsN}", "key", key_new_from(st->key_type, e->key),
			     "state", state, "size", (unsigned long long)e->size, "pins",
			     (unsigned int)e->pins, "waiters", (unsigned int)e->waiters,
			     "owner_pid", (int)e->owner_pid, "owner_alive",
			     e->owner_alive ? Py_True : Py_False, "created",
			     (double)e->created_ns / 1e9, "ttl", ttl);
}

static PyObject *Store_list(PyObject *self, PyObject *unused)
{
	StoreObject *s = (StoreObject *)self;
	module_state *st = state_of_type(Py_TYPE(self));
	uint64_t cursor = 0;
	pxs_entry e;
	int rc;
	if (store_check(s) < 0)
		return NULL;
	PyObject *out = PyList_New(0);
	if (!out)
		return NULL;
	while ((rc = pxs_list(s->h, &cursor, &e)) == 1) {
		PyObject *d = entry_dict(st, &e);
		if (!d || PyList_Append(out, d) < 0) {
			Py_XDECREF(d);
			Py_DECREF(out);
			return NULL;
		}
		Py_DECREF(d);
	}
	if (rc < 0) {
		Py_DECREF(out);
		return raise_pxs(st, rc);
	}
	return out;
}

static PyObject *Store_stat(PyObject *self, PyObject *unused)
{
	StoreObject *s = (StoreObject *)self;
	pxs_stats x;
	if (store_check(s) < 0)
		return NULL;
	int rc = pxs_stat(s->h, &x);
	if (rc < 0)
		return raise_pxs(state_of_type(Py_TYPE(self)), rc);
	return Py_BuildValue(
		"{sKsKsKsKsKsIsIsIsIsIsIsIsIsIsKsKsKsKsKsK}", "segment_size", x.segment_size,
		"heap_size", x.heap_size, "heap_used", x.heap_used, "heap_free", x.heap_free,
		"heap_largest_free", x.heap_largest_free, "capacity", x.capacity, "slots_used",
		x.slots_used, "objects", x.objects, "pending", x.pending, "abandoned", x.abandoned, "evicted_pinned",
		x.evicted_pinned, "pins", x.pins, "waiters", x.waiters, "processes",
		x.processes, "puts", x.puts, "gets", x.gets, "evictions", x.evictions,
		"waits", x.waits, "timeouts", x.timeouts, "recoveries", x.recoveries);
}

static PyObject *Store_reap(PyObject *self, PyObject *unused)
{
	StoreObject *s = (StoreObject *)self;
	if (store_check(s) < 0)
		return NULL;
	int rc = pxs_reap(s->h);
	if (rc < 0)
		return raise_pxs(state_of_type(Py_TYPE(self)), rc);
	return PyLong_FromLong(rc);
}

static PyObject *Store_reduce(PyObject *self, PyObject *unused)
{
	StoreObject *s = (StoreObject *)self;
	if (!s->name) {
		PyErr_SetString(PyExc_ValueError, "Store is not initialised");
		return NULL;
	}
	PyObject *mod = PyImport_ImportModule("proxyshm");
	if (!mod)
		return NULL;
	PyObject *fn = PyObject_GetAttrString(mod, "_attach");
	Py_DECREF(mod);
	if (!fn)
		return NULL;
	return Py_BuildValue("(N(O))", fn, s->name);
}

static PyObject *future_wrap(StoreObject *s, pxs_key k);

static PyObject *Store_future(PyObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "key", "owned", "name", NULL };
	StoreObject *s = (StoreObject *)self;
	module_state *st = state_of_type(Py_TYPE(self));
	PyObject *key = Py_None;
	const char *name = NULL;
	Py_ssize_t name_len = 0;
	int owned = 0, rc;
	pxs_key k;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|$Opz#:future", kwlist, &key, &owned,
					 &name, &name_len))
		return NULL;
	if (name && key != Py_None) {
		PyErr_SetString(PyExc_TypeError, "future(): give key or name, not both");
		return NULL;
	}
	if (name && (size_t)name_len != strlen(name)) {
		PyErr_SetString(PyExc_ValueError, "future(): name contains a NUL");
		return NULL;
	}
	if (store_check(s) < 0)
		return NULL;
	if (name) {
		rc = pxs_future_new_named(s->h, name, &k);
	} else if (key != Py_None) {
		if (key_arg(st, key, &k) < 0)
			return NULL;
		rc = pxs_future_new_at(s->h, k);
	} else {
		rc = pxs_future_new(s->h, &k);
	}
	if (rc == 0 && !owned && (rc = pxs_future_disown(s->h, k)) < 0)
		pxs_evict(s->h, k); /* not to leave a half-made future */
	if (rc < 0)
		return raise_pxs(st, rc);
	return future_wrap(s, k);
}

static PyObject *Store_stream(PyObject *self, PyObject *args, PyObject *kw);

static PyMethodDef Store_methods[] = {
	{ "close", Store_close, METH_NOARGS,
	  "close()\n--\n\nDetach. New operations raise ValueError at once; the segment stays mapped\n"
	  "until the last View and reservation of this Store are released. Idempotent." },
	{ "put", Store_put, METH_O,
	  "put(data, /)\n--\n\nCopy a bytes-like object (any C-contiguous buffer) into the store under a\n"
	  "fresh random key and return the Key." },
	{ "put_at", (PyCFunction)(void (*)(void))Store_put_at, METH_FASTCALL,
	  "put_at(key, data, /)\n--\n\nAs put() under a chosen key (FileExistsError if it is taken)." },
	{ "get", Store_get, METH_O,
	  "get(key, /)\n--\n\nPin the value under key and return it in place as a View. Raises\n"
	  "FileNotFoundError (absent), BlockingIOError (EAGAIN: a pending future),\n"
	  "OSError EOWNERDEAD (an abandoned future)." },
	{ "wait", (PyCFunction)(void (*)(void))Store_wait, METH_VARARGS | METH_KEYWORDS,
	  "wait(key, timeout=None)\n--\n\nWait until the future (or object) under key has a value and return it\n"
	  "as a View. TimeoutError after timeout seconds (None: for ever; 0: just check).\n"
	  "The GIL is released and Ctrl-C interrupts the wait." },
	{ "exists", Store_exists, METH_O,
	  "exists(key, /)\n--\n\nTrue if a value is present under key (not for a pending future)." },
	{ "evict", Store_evict, METH_O,
	  "evict(key, /)\n--\n\nRemove key for every process (pinned Views stay valid). Evicting a\n"
	  "pending future cancels it: its waiters get OSError ECANCELED." },
	{ "expire", (PyCFunction)(void (*)(void))Store_expire, METH_FASTCALL,
	  "expire(key, seconds, /)\n--\n\nGive key (an object or a future) a lifetime: seconds from now it is\n"
	  "evicted for every process, as by evict(). 0 evicts at once; None removes\n"
	  "the key's expiry; a later call replaces the deadline. From the deadline on\n"
	  "the key is absent; Views pinned before stay valid; waiters of a pending\n"
	  "future get OSError ECANCELED. FileNotFoundError if the key is absent or\n"
	  "already expired; ValueError for a negative or NaN seconds (nothing\n"
	  "changes). Not supported on a Redis store (OSError ENOTSUP)." },
	{ "wait_any", (PyCFunction)(void (*)(void))Store_wait_any, METH_VARARGS | METH_KEYWORDS,
	  "wait_any(keys, timeout=None)\n--\n\nWait until the first of 1 to 128 futures (a sequence of Keys or str)\n"
	  "has a value; return (index, View) of it (the lowest index when several\n"
	  "are ready). One kernel sleep on all of them, no polling. Every OSError it\n"
	  "raises has .index: the position of the key that ended the wait (malformed,\n"
	  "absent: FileNotFoundError, cancelled or expired: ECANCELED, abandoned:\n"
	  "EOWNERDEAD), or None (TimeoutError, InvalidArgumentError for an empty or\n"
	  "too long sequence). Unlike wait(), an absent key is an error at once.\n"
	  "The GIL is released and Ctrl-C interrupts the wait." },
	{ "list", Store_list, METH_NOARGS,
	  "list()\n--\n\nA list of dicts, one per object or future: key (Key), state ('value',\n"
	  "'pending', 'reserved', 'abandoned' or 'evicted': still pinned), size, pins,\n"
	  "waiters, owner_pid (futures; else 0), owner_alive, created (seconds since\n"
	  "the Epoch), ttl (seconds left before it expires, or None). A snapshot\n"
	  "taken without locks: entries changed meanwhile may or may not appear." },
	{ "future", (PyCFunction)(void (*)(void))Store_future, METH_VARARGS | METH_KEYWORDS,
	  "future(*, key=None, owned=False, name=None)\n--\n\nCreate a pending future (under a random key, under key, or under the key of\n"
	  "name, which the store keeps with the future for `proxyshm ls`) and return a\n"
	  "Future. Ownerless by default: it outlives this process. owned=True makes this\n"
	  "process its owner, whose death abandons it (waiters get EOWNERDEAD)." },
	{ "stream", (PyCFunction)(void (*)(void))Store_stream, METH_VARARGS | METH_KEYWORDS,
	  "stream(key_or_name, *, window=None, block=False, create=False)\n--\n\n"
	  "The stream under a Key (or 32-hex-digit str), or under the key of a name\n"
	  "(any other str or bytes, as Key.from_name()). create=True makes it: window\n"
	  "items retained (None: 16, at most 65536), block=True to make appends wait\n"
	  "for the slowest reader instead of sliding the window (FileExistsError if\n"
	  "the key is in use). Without create it must exist: FileNotFoundError, or\n"
	  "OSError EPROTO for a key that holds something else." },
	{ "stat", Store_stat, METH_NOARGS,
	  "stat()\n--\n\nA dict of the store's sizes and counters (the fields of pxs_stats)." },
	{ "reap", Store_reap, METH_NOARGS,
	  "reap()\n--\n\nReclaim what dead processes left behind; return how many were reaped." },
	{ "__enter__", Store_enter, METH_NOARGS, NULL },
	{ "__exit__", Store_exit, METH_VARARGS, NULL },
	{ "__reduce__", Store_reduce, METH_NOARGS, NULL },
	{ NULL, NULL, 0, NULL }
};

static PyGetSetDef Store_getset[] = {
	{ "name", Store_get_name, NULL, "The segment's name, with its leading '/'.", NULL },
	{ "closed", Store_get_closed, NULL, "True after close().", NULL },
	{ NULL, NULL, NULL, NULL, NULL }
};

static PyMemberDef Store_members[] = {
	{ "__weaklistoffset__", T_PYSSIZET, offsetof(StoreObject, weakrefs), READONLY, NULL },
	{ NULL, 0, 0, 0, NULL }
};

static PyType_Slot Store_slots[] = {
	{ Py_tp_doc,
	  "Store(name, *, size=0, capacity=0, create=False, exclusive=False, mode=0o600, spin_us=0)\n"
	  "--\n\n"
	  "Attach to the shared-memory store name ('/sim' or 'sim'), creating it with\n"
	  "create=True (size bytes, 0 = 256 MiB; capacity objects and futures, 0 = a table that grows;\n"
	  "exclusive=True fails with FileExistsError if it exists). spin_us: how long waits\n"
	  "poll before sleeping. name may also be a Redis store, 'redis://HOST:PORT/NAME'\n"
	  "(size, capacity and mode do not apply; Views are private copies; no streams).\n"
	  "A context manager; pickles as its name (attached again, once per process,\n"
	  "where unpickled). Thread-safe; survives fork()." },
	{ Py_tp_init, Store_init },
	{ Py_tp_new, PyType_GenericNew },
	{ Py_tp_dealloc, Store_dealloc },
	{ Py_tp_methods, Store_methods },
	{ Py_tp_getset, Store_getset },
	{ Py_tp_members, Store_members },
	{ 0, NULL }
};

static PyType_Spec Store_spec = { "proxyshm.Store", sizeof(StoreObject), 0,
				  Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE, Store_slots };

/* ------------------------------------------------------------------ */
/* Reservations                                                        */

/*
 * Future.reserve() hands Python a writable memoryview into the segment.
 * Writing after commit() would change a value that readers treat as
 * immutable, so the memoryview is made over a Reservation, an exporter
 * that counts its buffers and is invalidated at commit. commit() first
 * releases the memoryview that reserve() returned, then requires that no
 * buffer of the Reservation remains (a slice of it, or an array built on
 * it): if one does, it raises BufferError and publishes nothing. After a
 * successful commit every Python path to the memory is gone.
 *
 * The Store keeps a list of its live reservations (borrowed pointers; a
 * Reservation unlinks itself when it is freed), so commit() through any
 * Future object of the key finds it. The Reservation holds the memoryview
 * by weak reference only: no reference cycles.
 */
struct ReservationObject {
	PyObject_HEAD
	StoreObject *store;
	pxs_key key;
	void *buf;      /* NULL once invalidated */
	size_t size;
	Py_ssize_t exports;
	PyObject *mv_ref; /* weakref to the memoryview from reserve() */
	unsigned long tid; /* a stream's reserving thread; 0 for a future */
	ReservationObject *next;
};

static void resv_unlink(ReservationObject *r)
{
	ReservationObject **p = &r->store->resv;
	while (*p && *p != r)
		p = &(*p)->next;
	if (*p)
		*p = r->next;
	r->next = NULL;
}

static void Reservation_dealloc(PyObject *self)
{
	ReservationObject *r = (ReservationObject *)self;
	PyTypeObject *t = Py_TYPE(self);
	Py_XDECREF(r->mv_ref);
	if (r->store) {
		resv_unlink(r);
		store_unuse(r->store);
		Py_DECREF(r->store);
	}
	PyObject_Free(self);
	Py_DECREF(t);
}

static int Reservation_getbuffer(PyObject *self, Py_buffer *view, int flags)
{
	ReservationObject *r = (ReservationObject *)self;
	if (!r->buf) {
		PyErr_SetString(PyExc_ValueError, "the reservation was committed");
		return -1;
	}
	if (PyBuffer_FillInfo(view, self, r->buf, (Py_ssize_t)r->size, 0, flags) < 0)
		return -1;
	r->exports++;
	return 0;
}

static void Reservation_releasebuffer(PyObject *self, Py_buffer *view)
{
	((ReservationObject *)self)->exports--;
}

static PyType_Slot Reservation_slots[] = {
	{ Py_tp_doc, "The writable memory of a reserved future (see Future.reserve())." },
	{ Py_tp_dealloc, Reservation_dealloc },
	{ Py_bf_getbuffer, Reservation_getbuffer },
	{ Py_bf_releasebuffer, Reservation_releasebuffer },
	{ 0, NULL }
};

static PyType_Spec Reservation_spec = { "proxyshm._Reservation", sizeof(ReservationObject), 0,
					Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE |
						Py_TPFLAGS_DISALLOW_INSTANTIATION,
					Reservation_slots };

/* Find this process's live reservation of @p k in @p s made by thread
 * @p tid (0: a future's, whichever thread made it), or NULL. */
static ReservationObject *resv_find(StoreObject *s, pxs_key k, unsigned long tid)
{
	for (ReservationObject *r = s->resv; r; r = r->next)
		if (pxs_key_equal(r->key, k) && r->tid == tid)
			return r;
	return NULL;
}

/* Make the reservation unreachable from Python before commit: release the
 * memoryview reserve() returned and require that no other buffer is left.
 * 0, or -1 with BufferError (or the memoryview's error) set. */
static int resv_seal(ReservationObject *r)
{
	PyObject *mv = r->mv_ref ? PyWeakref_GetObject(r->mv_ref) : NULL;
	if (mv && mv != Py_None) {
		PyObject *res = PyObject_CallMethod(mv, "release", NULL);
		if (!res)
			return -1;
		Py_DECREF(res);
	}
	if (r->exports > 0) {
		PyErr_Format(PyExc_BufferError,
			     "cannot commit while %zd buffer(s) of the reservation exist "
			     "(delete the arrays and memoryviews made from it first)",
			     r->exports);
		return -1;
	}
	r->buf = NULL;
	resv_unlink(r);
	return 0;
}

/* resv_seal() of this process's reservation of @p k in @p s, if any. */
static int resv_seal_key(StoreObject *s, pxs_key k, unsigned long tid)
{
	ReservationObject *r = resv_find(s, k, tid);
	return r ? resv_seal(r) : 0;
}

/* Wrap the reservation @p buf, @p size bytes, of @p k (by thread @p tid,
 * as for resv_find()) in a Reservation and return a writable memoryview of
 * it (or NULL with an exception set: the library's reservation stays). */
static PyObject *resv_wrap(StoreObject *s, pxs_key k, unsigned long tid, void *buf,
			   size_t size)
{
	module_state *st = state_of_type(Py_TYPE(s));
	ReservationObject *r = PyObject_New(ReservationObject, st->reservation_type);
	if (!r)
		return NULL;
	r->store = (StoreObject *)Py_NewRef((PyObject *)s);
	r->key = k;
	r->buf = buf;
	r->size = size;
	r->exports = 0;
	r->mv_ref = NULL;
	r->tid = tid;
	r->next = s->resv;
	s->resv = r;
	s->uses++;
	PyObject *mv = PyMemoryView_FromObject((PyObject *)r);
	Py_DECREF(r); /* the memoryview holds it */
	if (!mv)
		return NULL;
	r->mv_ref = PyWeakref_NewRef(mv, NULL);
	if (!r->mv_ref) {
		Py_DECREF(mv);
		return NULL;
	}
	return mv;
}

/* ------------------------------------------------------------------ */
/* Future                                                              */

typedef struct {
	PyObject_HEAD
	StoreObject *store;
	pxs_key key;
} FutureObject;

static PyObject *future_wrap(StoreObject *s, pxs_key k)
{
	module_state *st = state_of_type(Py_TYPE(s));
	FutureObject *f = PyObject_New(FutureObject, st->future_type);
	if (!f)
		return NULL;
	f->store = (StoreObject *)Py_NewRef((PyObject *)s);
	f->key = k;
	return (PyObject *)f;
}

static PyObject *Future_new(PyTypeObject *t, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "store", "key", NULL };
	module_state *st = state_of_type(t);
	PyObject *store, *key;
	pxs_key k;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O!O:Future", kwlist, st->store_type, &store,
					 &key))
		return NULL;
	if (key_arg(st, key, &k) < 0)
		return NULL;
	return future_wrap((StoreObject *)store, k);
}

static void Future_dealloc(PyObject *self)
{
	PyTypeObject *t = Py_TYPE(self);
	Py_XDECREF(((FutureObject *)self)->store);
	PyObject_Free(self);
	Py_DECREF(t);
}

static PyObject *Future_get_key(PyObject *self, void *c)
{
	return key_new_from(state_of_type(Py_TYPE(self))->key_type, ((FutureObject *)self)->key);
}

static PyObject *Future_get_store(PyObject *self, void *c)
{
	return Py_NewRef((PyObject *)((FutureObject *)self)->store);
}

static PyObject *Future_set_result(PyObject *self, PyObject *data)
{
	FutureObject *f = (FutureObject *)self;
	StoreObject *s = f->store;
	Py_buffer b;
	int rc;
	if (store_check(s) < 0 || PyObject_GetBuffer(data, &b, PyBUF_C_CONTIGUOUS) < 0)
		return NULL;
	MAYBE_NOGIL(s, b.len, rc = pxs_future_set(s->h, f->key, b.buf, (size_t)b.len));
	PyBuffer_Release(&b);
	if (rc < 0)
		return raise_pxs(state_of_type(Py_TYPE(self)), rc);
	Py_RETURN_NONE;
}

static PyObject *Future_result(PyObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "timeout", NULL };
	FutureObject *f = (FutureObject *)self;
	PyObject *timeout = Py_None;
	long ms;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:result", kwlist, &timeout))
		return NULL;
	if (store_check(f->store) < 0 || timeout_arg(timeout, &ms) < 0)
		return NULL;
	return store_wait(f->store, f->key, ms);
}

static PyObject *Future_done(PyObject *self, PyObject *unused)
{
	FutureObject *f = (FutureObject *)self;
	if (store_check(f->store) < 0)
		return NULL;
	int rc = pxs_future_done(f->store->h, f->key);
	if (rc < 0)
		return raise_pxs(state_of_type(Py_TYPE(self)), rc);
	return PyBool_FromLong(rc);
}

static PyObject *future_call(PyObject *self, int (*fn)(pxs_store *, pxs_key))
{
	FutureObject *f = (FutureObject *)self;
	if (store_check(f->store) < 0)
		return NULL;
	int rc = fn(f->store->h, f->key);
	if (rc < 0)
		return raise_pxs(state_of_type(Py_TYPE(self)), rc);
	Py_RETURN_NONE;
}

static PyObject *Future_claim(PyObject *self, PyObject *unused)
{
	return future_call(self, pxs_future_claim);
}

static PyObject *Future_disown(PyObject *self, PyObject *unused)
{
	return future_call(self, pxs_future_disown);
}

static PyObject *Future_cancel(PyObject *self, PyObject *unused)
{
	return future_call(self, pxs_evict);
}

static PyObject *Future_proxy(PyObject *self, PyObject *unused)
{
	FutureObject *f = (FutureObject *)self;
	module_state *st = state_of_type(Py_TYPE(self));
	const char *name = PyUnicode_AsUTF8(f->store->name);
	pxs_proxy *p;
	char buf[PXS_PROXY_STRLEN];
	if (!name)
		return NULL;
	int rc = pxs_proxy_new(name, f->key, &p);
	if (rc < 0)
		return raise_pxs(st, rc);
	rc = pxs_proxy_format(p, buf, sizeof buf);
	pxs_proxy_free(p);
	if (rc < 0)
		return raise_pxs(st, rc);
	return PyUnicode_FromStringAndSize(buf, rc);
}

static PyObject *Future_reserve(PyObject *self, PyObject *arg)
{
	FutureObject *f = (FutureObject *)self;
	StoreObject *s = f->store;
	module_state *st = state_of_type(Py_TYPE(self));
	Py_ssize_t n = PyLong_AsSsize_t(arg);
	void *buf;
	if (n == -1 && PyErr_Occurred())
		return NULL;
	if (n < 0)
		return raise_pxs(st, -EINVAL);
	if (store_check(s) < 0)
		return NULL;
	int rc = pxs_future_reserve(s->h, f->key, (size_t)n, &buf);
	if (rc < 0)
		return raise_pxs(st, rc);
	return resv_wrap(s, f->key, 0, buf, (size_t)n); /* on failure evict() frees it */
}

static PyObject *Future_commit(PyObject *self, PyObject *unused)
{
	FutureObject *f = (FutureObject *)self;
	StoreObject *s = f->store;
	if (store_check(s) < 0)
		return NULL;
	if (resv_seal_key(s, f->key, 0) < 0)
		return NULL;
	int rc = pxs_future_commit(s->h, f->key);
	if (rc < 0)
		return raise_pxs(state_of_type(Py_TYPE(self)), rc);
	Py_RETURN_NONE;
}

/* A Future or a Stream pickles as proxyshm.<@p fn>(store name, key hex). */
static PyObject *keyed_reduce(PyObject *self, const char *fn_name)
{
	FutureObject *f = (FutureObject *)self;
	PyObject *mod = PyImport_ImportModule("proxyshm");
	if (!mod)
		return NULL;
	PyObject *fn = PyObject_GetAttrString(mod, fn_name);
	Py_DECREF(mod);
	if (!fn)
		return NULL;
	char buf[PXS_KEY_STRLEN];
	pxs_key_format(f->key, buf);
	return Py_BuildValue("(N(Os))", fn, f->store->name, buf);
}

static PyObject *Future_reduce(PyObject *self, PyObject *unused)
{
	return keyed_reduce(self, "_future");
}

/* <proxyshm.Future /store key>, and the same for a Stream. */
static PyObject *keyed_repr(PyObject *self)
{
	FutureObject *f = (FutureObject *)self;
	char buf[PXS_KEY_STRLEN];
	pxs_key_format(f->key, buf);
	return PyUnicode_FromFormat("<%s %U %s>", Py_TYPE(self)->tp_name, f->store->name, buf);
}

static PyMethodDef Future_methods[] = {
	{ "set_result", Future_set_result, METH_O,
	  "set_result(data, /)\n--\n\nCopy a bytes-like object in, publish it and wake every waiter\n"
	  "(FileExistsError never; OSError EALREADY if already set)." },
	{ "result", (PyCFunction)(void (*)(void))Future_result, METH_VARARGS | METH_KEYWORDS,
	  "result(timeout=None)\n--\n\nWait for the value and return it as a View. TimeoutError after timeout\n"
	  "seconds; OSError EOWNERDEAD if the owner died first, ECANCELED if evicted.\n"
	  "The GIL is released during the wait; Ctrl-C raises KeyboardInterrupt." },
	{ "done", Future_done, METH_NOARGS, "done()\n--\n\nTrue if the future has a value." },
	{ "claim", Future_claim, METH_NOARGS,
	  "claim()\n--\n\nMake this process the owner: its death abandons the future." },
	{ "disown", Future_disown, METH_NOARGS,
	  "disown()\n--\n\nStop owning the future so that it outlives this process." },
	{ "cancel", Future_cancel, METH_NOARGS,
	  "cancel()\n--\n\nEvict the future: its waiters get OSError ECANCELED." },
	{ "proxy", Future_proxy, METH_NOARGS,
	  "proxy()\n--\n\nThe pxs://<store>/<key> string that resolve() turns into the value." },
	{ "reserve", Future_reserve, METH_O,
	  "reserve(nbytes, /)\n--\n\nReserve nbytes for the value and return a writable memoryview into\n"
	  "the segment; this process becomes the owner. Write, then commit(). The\n"
	  "memoryview is released by commit(), which raises BufferError while an\n"
	  "array or memoryview made from it still exists." },
	{ "commit", Future_commit, METH_NOARGS,
	  "commit()\n--\n\nPublish the reserved value and wake every waiter." },
	{ "__reduce__", Future_reduce, METH_NOARGS, NULL },
	{ NULL, NULL, 0, NULL }
};

static PyGetSetDef Future_getset[] = {
	{ "key", Future_get_key, NULL, "The future's Key.", NULL },
	{ "store", Future_get_store, NULL, "The Store it lives in.", NULL },
	{ NULL, NULL, NULL, NULL, NULL }
};

static PyType_Slot Future_slots[] = {
	{ Py_tp_doc, "Future(store, key)\n--\n\nA future in a store (from Store.future(), or for an existing key).\n"
		     "Pickles as its store's name and key: the unpickling process attaches\n"
		     "the store (once per process) and can wait on it or set it." },
	{ Py_tp_new, Future_new },
	{ Py_tp_dealloc, Future_dealloc },
	{ Py_tp_repr, keyed_repr },
	{ Py_tp_methods, Future_methods },
	{ Py_tp_getset, Future_getset },
	{ 0, NULL }
};

static PyType_Spec Future_spec = { "proxyshm.Future", sizeof(FutureObject), 0,
				   Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE, Future_slots };

/* ------------------------------------------------------------------ */
/* Stream                                                              */

/*
 * A Stream is a store and the key of a stream in it (the same object as a
 * Future's: future_call() and the key/store getters serve both). Every
 * call that may wait (append, reserve, read, take) runs in sliced_wait()'s
 * slices, with the GIL released and Ctrl-C seen between slices; the
 * library's stream waits restart after signals as its future waits do.
 * Slicing changes nothing else: a slice that times out has appended,
 * reserved, read or taken nothing. Stream.reader() is the pure-Python
 * proxyshm._StreamReader over join(), read() and leave().
 *
 * reserve() hands out a Reservation as Future.reserve() does. The
 * library's stream reservation belongs to the reserving thread, so the
 * Reservation records the thread and commit() seals the calling thread's.
 */
typedef FutureObject StreamObject;

static PyObject *stream_wrap(StoreObject *s, pxs_key k)
{
	module_state *st = state_of_type(Py_TYPE(s));
	StreamObject *o = PyObject_New(StreamObject, st->stream_type);
	if (!o)
		return NULL;
	o->store = (StoreObject *)Py_NewRef((PyObject *)s);
	o->key = k;
	return (PyObject *)o;
}

/* A Key, a str of 32 hex digits, or else a name (str or bytes-like) whose
 * hash is the key, as Key.from_name(). 0, or -1 with an exception set. */
static int stream_key_arg(module_state *st, PyObject *obj, pxs_key *out)
{
	int rc = key_parse(st, obj, out);
	if (rc == 0)
		return 0;
	if (rc == KEY_RAISED && !PyObject_CheckBuffer(obj))
		return -1;
	PyErr_Clear();
	PyObject *k = Key_from_name((PyObject *)st->key_type, obj);
	if (!k)
		return -1;
	*out = ((KeyObject *)k)->k;
	Py_DECREF(k);
	return 0;
}

/* A sequence number: an int >= 0 (InvalidArgumentError otherwise). */
static int seq_arg(module_state *st, PyObject *o, uint64_t *seq)
{
	unsigned long long v = PyLong_AsUnsignedLongLong(o);
	if (v == (unsigned long long)-1 && PyErr_Occurred()) {
		if (!PyErr_ExceptionMatches(PyExc_OverflowError))
			return -1;
		PyErr_Clear();
		raise_pxs(st, -EINVAL);
		return -1;
	}
	*seq = v;
	return 0;
}

static PyObject *Store_stream(PyObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "key", "window", "block", "create", NULL };
	StoreObject *s = (StoreObject *)self;
	module_state *st = state_of_type(Py_TYPE(self));
	PyObject *key, *window = Py_None;
	int block = 0, create = 0, rc;
	pxs_key k;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|$Opp:stream", kwlist, &key, &window, &block,
					 &create))
		return NULL;
	if (store_check(s) < 0 || stream_key_arg(st, key, &k) < 0)
		return NULL;
	if (create) {
		pxs_stream_options o = { .window = 16, .flags = block ? PXS_STREAM_BLOCK : 0 };
		if (window != Py_None) {
			unsigned long w = PyLong_AsUnsignedLong(window);
			if (w == (unsigned long)-1 && PyErr_Occurred()) {
				if (!PyErr_ExceptionMatches(PyExc_OverflowError))
					return NULL;
				PyErr_Clear();
				w = 0; /* out of range: the library's EINVAL */
			}
			o.window = w > PXS_STREAM_WINDOW_MAX ? 0 : (uint32_t)w;
		}
		rc = pxs_stream_new(s->h, k, &o);
	} else {
		pxs_stream_stats x;
		rc = window != Py_None || block ? -EINVAL : pxs_stream_stat(s->h, k, &x);
	}
	if (rc < 0)
		return raise_pxs(st, rc);
	return stream_wrap(s, k);
}

struct stream_op {
	pxs_key key;
	const char *group; /* take */
	uint64_t seq;      /* read; set by append and take */
	const void *data;  /* append */
	size_t size;       /* append, reserve */
	void *buf;         /* set by reserve */
	pxs_view v;        /* set by read and take */
};

static int stream_append_fn(pxs_store *h, void *arg, long slice_ms)
{
	struct stream_op *o = arg;
	return pxs_stream_append(h, o->key, o->data, o->size, slice_ms, &o->seq);
}

static int stream_reserve_fn(pxs_store *h, void *arg, long slice_ms)
{
	struct stream_op *o = arg;
	return pxs_stream_reserve(h, o->key, o->size, slice_ms, &o->buf);
}

static int stream_read_fn(pxs_store *h, void *arg, long slice_ms)
{
	struct stream_op *o = arg;
	return pxs_stream_read(h, o->key, o->seq, slice_ms, &o->v);
}

static int stream_take_fn(pxs_store *h, void *arg, long slice_ms)
{
	struct stream_op *o = arg;
	return pxs_stream_take(h, o->key, o->group, slice_ms, &o->seq, &o->v);
}

/* Run @p fn on @p o in sliced_wait(): 0, or -1 with an exception set. */
static int stream_wait(StreamObject *f, long timeout_ms, wait_fn fn, struct stream_op *o)
{
	o->key = f->key;
	int rc = sliced_wait(f->store, timeout_ms, fn, o);
	if (rc == WAIT_INTERRUPTED)
		return -1;
	if (rc < 0) {
		raise_pxs(state_of_type(Py_TYPE(f)), rc);
		return -1;
	}
	return 0;
}

static PyObject *Stream_append(PyObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "data", "timeout", NULL };
	StreamObject *f = (StreamObject *)self;
	PyObject *timeout = Py_None;
	struct stream_op o = { 0 };
	Py_buffer b;
	long ms;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "y*|O:append", kwlist, &b, &timeout))
		return NULL;
	int rc = store_check(f->store) < 0 || timeout_arg(timeout, &ms) < 0 ? -1 : 0;
	if (rc == 0) {
		o.data = b.buf;
		o.size = (size_t)b.len;
		rc = stream_wait(f, ms, stream_append_fn, &o);
	}
	PyBuffer_Release(&b);
	return rc < 0 ? NULL : PyLong_FromUnsignedLongLong(o.seq);
}

static PyObject *Stream_reserve(PyObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "nbytes", "timeout", NULL };
	StreamObject *f = (StreamObject *)self;
	PyObject *timeout = Py_None;
	struct stream_op o = { 0 };
	Py_ssize_t n;
	long ms;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "n|O:reserve", kwlist, &n, &timeout))
		return NULL;
	if (n < 0)
		return raise_pxs(state_of_type(Py_TYPE(self)), -EINVAL);
	if (store_check(f->store) < 0 || timeout_arg(timeout, &ms) < 0)
		return NULL;
	o.size = (size_t)n;
	if (stream_wait(f, ms, stream_reserve_fn, &o) < 0)
		return NULL;
	return resv_wrap(f->store, f->key, PyThread_get_thread_ident(), o.buf, o.size);
}

static PyObject *Stream_commit(PyObject *self, PyObject *unused)
{
	StreamObject *f = (StreamObject *)self;
	StoreObject *s = f->store;
	uint64_t seq;
	if (store_check(s) < 0 || resv_seal_key(s, f->key, PyThread_get_thread_ident()) < 0)
		return NULL;
	int rc = pxs_stream_commit(s->h, f->key, &seq);
	if (rc < 0)
		return raise_pxs(state_of_type(Py_TYPE(self)), rc);
	return PyLong_FromUnsignedLongLong(seq);
}

static PyObject *Stream_read(PyObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "seq", "timeout", NULL };
	StreamObject *f = (StreamObject *)self;
	module_state *st = state_of_type(Py_TYPE(self));
	PyObject *seq, *timeout = Py_None;
	struct stream_op o = { 0 };
	long ms;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O:read", kwlist, &seq, &timeout))
		return NULL;
	if (store_check(f->store) < 0 || seq_arg(st, seq, &o.seq) < 0 ||
	    timeout_arg(timeout, &ms) < 0 || stream_wait(f, ms, stream_read_fn, &o) < 0)
		return NULL;
	return view_wrap(f->store, f->key, &o.v);
}

static PyObject *Stream_take(PyObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "group", "timeout", NULL };
	StreamObject *f = (StreamObject *)self;
	PyObject *timeout = Py_None;
	struct stream_op o = { 0 };
	long ms;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "s|O:take", kwlist, &o.group, &timeout))
		return NULL;
	if (store_check(f->store) < 0 || timeout_arg(timeout, &ms) < 0 ||
	    stream_wait(f, ms, stream_take_fn, &o) < 0)
		return NULL;
	PyObject *view = view_wrap(f->store, f->key, &o.v);
	return view ? Py_BuildValue("(KN)", (unsigned long long)o.seq, view) : NULL;
}

static PyObject *Stream_ack(PyObject *self, PyObject *args)
{
	StreamObject *f = (StreamObject *)self;
	module_state *st = state_of_type(Py_TYPE(self));
	const char *group;
	PyObject *seq;
	uint64_t n;
	if (!PyArg_ParseTuple(args, "sO:ack", &group, &seq))
		return NULL;
	if (store_check(f->store) < 0 || seq_arg(st, seq, &n) < 0)
		return NULL;
	int rc = pxs_stream_ack(f->store->h, f->key, group, n);
	if (rc < 0)
		return raise_pxs(st, rc);
	Py_RETURN_NONE;
}

static PyObject *Stream_join(PyObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "from_seq", NULL };
	StreamObject *f = (StreamObject *)self;
	module_state *st = state_of_type(Py_TYPE(self));
	PyObject *from = NULL;
	uint64_t seq = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:join", kwlist, &from))
		return NULL;
	if (store_check(f->store) < 0 || (from && seq_arg(st, from, &seq) < 0))
		return NULL;
	int rc = pxs_stream_join(f->store->h, f->key, seq);
	if (rc < 0)
		return raise_pxs(st, rc);
	Py_RETURN_NONE;
}

static PyObject *Stream_end(PyObject *self, PyObject *unused)
{
	return future_call(self, pxs_stream_end);
}

static PyObject *Stream_leave(PyObject *self, PyObject *unused)
{
	return future_call(self, pxs_stream_leave);
}

static PyObject *Stream_stat(PyObject *self, PyObject *unused)
{
	StreamObject *f = (StreamObject *)self;
	pxs_stream_stats x;
	if (store_check(f->store) < 0)
		return NULL;
	int rc = pxs_stream_stat(f->store->h, f->key, &x);
	if (rc < 0)
		return raise_pxs(state_of_type(Py_TYPE(self)), rc);
	PyObject *pos = x.position == UINT64_MAX ? Py_NewRef(Py_None) :
						   PyLong_FromUnsignedLongLong(x.position);
	if (!pos)
		return NULL;
	return Py_BuildValue("{sKsKsNsIsNsIsIsIsIsKsN}", "first", (unsigned long long)x.first,
			     "next", (unsigned long long)x.next, "ended", PyBool_FromLong(x.ended),
			     "window", x.window, "block",
			     PyBool_FromLong((x.flags & PXS_STREAM_BLOCK) != 0), "readers",
			     x.readers, "groups", x.groups, "taken", x.taken, "reserved",
			     x.reserved, "slowest", (unsigned long long)x.slowest, "position", pos);
}

static PyObject *Stream_reader(PyObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "from_seq", "timeout", NULL };
	PyObject *from = Py_None, *timeout = Py_None;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|OO:reader", kwlist, &from, &timeout))
		return NULL;
	PyObject *mod = PyImport_ImportModule("proxyshm");
	if (!mod)
		return NULL;
	PyObject *res = PyObject_CallMethod(mod, "_StreamReader", "OOO", self, from, timeout);
	Py_DECREF(mod);
	return res;
}

static PyObject *Stream_reduce(PyObject *self, PyObject *unused)
{
	return keyed_reduce(self, "_stream");
}

#define TIMEOUT_DOC                                                                      \
	"timeout: seconds (None: for ever, 0: just check), then TimeoutError. The GIL is\n" \
	"released during the wait; Ctrl-C raises KeyboardInterrupt."

static PyMethodDef Stream_methods[] = {
	{ "append", (PyCFunction)(void (*)(void))Stream_append, METH_VARARGS | METH_KEYWORDS,
	  "append(data, timeout=None)\n--\n\nCopy a bytes-like object in as the next item and return its seq.\n"
	  "On a block=True stream it waits while the window is full up to the slowest\n"
	  "reader or group. BrokenPipeError (EPIPE) once the stream has ended.\n" TIMEOUT_DOC },
	{ "reserve", (PyCFunction)(void (*)(void))Stream_reserve, METH_VARARGS | METH_KEYWORDS,
	  "reserve(nbytes, timeout=None)\n--\n\nReserve the next item and return a writable memoryview into the\n"
	  "segment; write it, then commit() from the same thread. Readers see nothing\n"
	  "before the commit; a process that dies first leaves no gap. One reservation\n"
	  "per thread and stream (OSError EBUSY). Waits as append() does.\n" TIMEOUT_DOC },
	{ "commit", Stream_commit, METH_NOARGS,
	  "commit()\n--\n\nPublish this thread's reservation as the next item and return its seq.\n"
	  "Releases reserve()'s memoryview; BufferError (nothing published) while an\n"
	  "array or memoryview made from it still exists." },
	{ "read", (PyCFunction)(void (*)(void))Stream_read, METH_VARARGS | METH_KEYWORDS,
	  "read(seq, timeout=None)\n--\n\nWait for item seq and return it in place as a View. OSError ERANGE if\n"
	  "it slid out of the window (stat()['first'] is the oldest left),\n"
	  "BrokenPipeError (EPIPE) if the stream ended before it. Reading a joined\n"
	  "process's position moves the position on.\n" TIMEOUT_DOC },
	{ "end", Stream_end, METH_NOARGS,
	  "end()\n--\n\nEnd the stream: appends get BrokenPipeError, readers and takers that\n"
	  "reach the end get it too; retained items stay readable. OSError EALREADY\n"
	  "if it has ended already." },
	{ "stat", Stream_stat, METH_NOARGS,
	  "stat()\n--\n\nA dict: first (oldest retained seq), next (the next commit's seq),\n"
	  "ended, window, block, readers, groups, taken (unacknowledged items),\n"
	  "reserved, slowest (lowest seq a reader or group still needs) and position\n"
	  "(this process's reader position, None if not joined). One atomic snapshot." },
	{ "join", (PyCFunction)(void (*)(void))Stream_join, METH_VARARGS | METH_KEYWORDS,
	  "join(from_seq=0)\n--\n\nMake this process a reader at position from_seq: on a block=True stream\n"
	  "it holds producers back until it reads on. OSError ERANGE if from_seq is\n"
	  "below stat()['first'], EALREADY if this process is joined already. A\n"
	  "forked child is not joined; a dead reader is dropped." },
	{ "leave", Stream_leave, METH_NOARGS,
	  "leave()\n--\n\nStop being a reader (FileNotFoundError if not joined)." },
	{ "take", (PyCFunction)(void (*)(void))Stream_take, METH_VARARGS | METH_KEYWORDS,
	  "take(group, timeout=None)\n--\n\nTake the next item for the named group (1 to 31 bytes): each item goes\n"
	  "to one member process at a time, and back to the group if its taker dies\n"
	  "before ack(). Returns (seq, View). BrokenPipeError once the stream has\n"
	  "ended and every item the group got is acknowledged.\n" TIMEOUT_DOC },
	{ "ack", Stream_ack, METH_VARARGS,
	  "ack(group, seq, /)\n--\n\nAcknowledge item seq of group: it is done and never handed out again\n"
	  "(FileNotFoundError if it is not taken and unacknowledged)." },
	{ "reader", (PyCFunction)(void (*)(void))Stream_reader, METH_VARARGS | METH_KEYWORDS,
	  "reader(from_seq=None, timeout=None)\n--\n\nJoin (at from_seq; None: the oldest retained item) and return an\n"
	  "iterator of Views, one item after another, that stops at the end of the\n"
	  "stream and leaves on close(), on exit of its with block, or when collected.\n"
	  "OSError ERANGE for items that slid out (the next item is then the oldest\n"
	  "left); timeout applies to each item." },
	{ "__reduce__", Stream_reduce, METH_NOARGS, NULL },
	{ NULL, NULL, 0, NULL }
};

static PyGetSetDef Stream_getset[] = {
	{ "key", Future_get_key, NULL, "The stream's Key.", NULL },
	{ "store", Future_get_store, NULL, "The Store it lives in.", NULL },
	{ NULL, NULL, NULL, NULL, NULL }
};

static PyType_Slot Stream_slots[] = {
	{ Py_tp_doc, "A stream in a store, from Store.stream(): items numbered 0, 1, 2, ... in\n"
		     "commit order, read in place as Views, a window of retained items, readers\n"
		     "that can hold producers back, and groups that hand each item to one\n"
		     "member. Pickles as its store's name and key. Thread-safe; the reader\n"
		     "position and group membership belong to the process." },
	{ Py_tp_dealloc, Future_dealloc },
	{ Py_tp_repr, keyed_repr },
	{ Py_tp_methods, Stream_methods },
	{ Py_tp_getset, Stream_getset },
	{ 0, NULL }
};

static PyType_Spec Stream_spec = { "proxyshm.Stream", sizeof(StreamObject), 0,
				   Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE |
					   Py_TPFLAGS_DISALLOW_INSTANTIATION,
				   Stream_slots };

/* ------------------------------------------------------------------ */
/* Module                                                              */

static PyObject *mod_unlink(PyObject *m, PyObject *name)
{
	module_state *st = PyModule_GetState(m);
	if (!PyUnicode_Check(name)) {
		PyErr_SetString(PyExc_TypeError, "unlink() takes a str");
		return NULL;
	}
	PyObject *full = store_name(name);
	if (!full)
		return NULL;
	const char *c = PyUnicode_AsUTF8(full);
	int rc = c ? pxs_unlink(c) : 0;
	Py_DECREF(full);
	if (!c)
		return NULL;
	if (rc < 0)
		return raise_pxs(st, rc);
	Py_RETURN_NONE;
}

static PyObject *mod_parse_proxy(PyObject *m, PyObject *arg)
{
	module_state *st = PyModule_GetState(m);
	pxs_proxy *p;
	if (!PyUnicode_Check(arg)) {
		PyErr_SetString(PyExc_TypeError, "a proxy string is required");
		return NULL;
	}
	Py_ssize_t n;
	const char *s = PyUnicode_AsUTF8AndSize(arg, &n);
	if (!s)
		return NULL;
	if (strlen(s) != (size_t)n) /* a NUL inside: not a proxy string */
		return raise_pxs(st, -EINVAL);
	int rc = pxs_proxy_parse(s, &p);
	if (rc < 0)
		return raise_pxs(st, rc);
	pxs_key k = pxs_proxy_key(p);
	pxs_proxy_free(p);
	/* Parsed strictly, so the string is "pxs://" NAME "/" 32 hex (NAME a
	 * segment's without its '/') or a Redis store's name, "/", 32 hex. */
	char name_buf[PXS_PROXY_STRLEN];
	size_t len = (size_t)n - 33; /* < PXS_PROXY_STRLEN - 33 */
	if (strncmp(s, REDIS_SCHEME, strlen(REDIS_SCHEME)) == 0) {
		memcpy(name_buf, s, len);
	} else { /* "pxs://" is 6 bytes; its NAME gets back its '/' */
		name_buf[0] = '/';
		memcpy(name_buf + 1, s + 6, len - 6);
		len -= 5;
	}
	PyObject *name = PyUnicode_FromStringAndSize(name_buf, (Py_ssize_t)len);
	if (!name)
		return NULL;
	return Py_BuildValue("(NN)", name, key_new_from(st->key_type, k));
}

static PyObject *mod_strerror(PyObject *m, PyObject *arg)
{
	int e = PyLong_AsLong(arg) ;
	if (e == -1 && PyErr_Occurred())
		return NULL;
	return PyUnicode_FromString(pxs_strerror(e > 0 ? -e : e));
}

static PyMethodDef mod_methods[] = {
	{ "unlink", mod_unlink, METH_O,
	  "unlink(name, /)\n--\n\nRemove the store name; attached processes keep working on it." },
	{ "_parse_proxy", mod_parse_proxy, METH_O,
	  "_parse_proxy(s, /)\n--\n\n(store name, Key) of a pxs:// string, parsed strictly." },
	{ "strerror", mod_strerror, METH_O,
	  "strerror(errno, /)\n--\n\npxs_strerror()'s text for an errno value (either sign)." },
	{ NULL, NULL, 0, NULL }
};

static int mod_exec(PyObject *m)
{
	module_state *st = PyModule_GetState(m);
	PyObject *bases = PyTuple_Pack(2, PyExc_OSError, PyExc_ValueError);
	if (!bases)
		return -1;
	st->invalid_argument = PyErr_NewExceptionWithDoc(
		"proxyshm.InvalidArgumentError",
		"An argument the library rejected (errno EINVAL): an OSError and a ValueError.",
		bases, NULL);
	Py_DECREF(bases);
	if (!st->invalid_argument ||
	    PyModule_AddObjectRef(m, "InvalidArgumentError", st->invalid_argument) < 0)
		return -1;
	struct {
		PyType_Spec *spec;
		PyTypeObject **slot;
		const char *name;
	} types[] = { { &Key_spec, &st->key_type, "Key" },
		      { &Store_spec, &st->store_type, "Store" },
		      { &View_spec, &st->view_type, "View" },
		      { &Future_spec, &st->future_type, "Future" },
		      { &Stream_spec, &st->stream_type, "Stream" },
		      { &Reservation_spec, &st->reservation_type, "_Reservation" } };
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
		*types[i].slot = (PyTypeObject *)PyType_FromModuleAndSpec(m, types[i].spec, NULL);
		if (!*types[i].slot ||
		    PyModule_AddObjectRef(m, types[i].name, (PyObject *)*types[i].slot) < 0)
			return -1;
	}
	if (PyModule_AddStringConstant(m, "__version__", pxs_version()) < 0 ||
	    PyModule_AddIntConstant(m, "DEFAULT_SIZE", (long)PXS_DEFAULT_SIZE) < 0 ||
	    PyModule_AddIntConstant(m, "MIN_SIZE", (long)PXS_MIN_SIZE) < 0 ||
	    PyModule_AddIntConstant(m, "MAX_SPIN_US", (long)PXS_MAX_SPIN_US) < 0 ||
	    PyModule_AddIntConstant(m, "WAIT_ANY_MAX", (long)PXS_WAIT_ANY_MAX) < 0)
		return -1;
	return 0;
}

static int mod_traverse(PyObject *m, visitproc visit, void *arg)
{
	module_state *st = PyModule_GetState(m);
	Py_VISIT(st->invalid_argument);
	Py_VISIT(st->key_type);
	Py_VISIT(st->store_type);
	Py_VISIT(st->view_type);
	Py_VISIT(st->future_type);
	Py_VISIT(st->reservation_type);
	Py_VISIT(st->stream_type);
	return 0;
}

static int mod_clear(PyObject *m)
{
	module_state *st = PyModule_GetState(m);
	Py_CLEAR(st->invalid_argument);
	Py_CLEAR(st->key_type);
	Py_CLEAR(st->store_type);
	Py_CLEAR(st->view_type);
	Py_CLEAR(st->future_type);
	Py_CLEAR(st->reservation_type);
	Py_CLEAR(st->stream_type);
	return 0;
}

static PyModuleDef_Slot mod_slots[] = { { Py_mod_exec, mod_exec }, { 0, NULL } };

static struct PyModuleDef moddef = {
	PyModuleDef_HEAD_INIT,
	"proxyshm._proxyshm",
	"The C core of the proxyshm package; import proxyshm instead.",
	sizeof(module_state),
	mod_methods,
	mod_slots,
	mod_traverse,
	mod_clear,
	NULL
};

static module_state *state_of_type(PyTypeObject *t)
{
	PyObject *m = PyType_GetModuleByDef(t, &moddef);
	return m ? PyModule_GetState(m) : NULL;
}

PyMODINIT_FUNC PyInit__proxyshm(void);
PyMODINIT_FUNC PyInit__proxyshm(void)
{
	return PyModuleDef_Init(&moddef);
}
