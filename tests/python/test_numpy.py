"""numpy over Views and reservations: zero-copy both ways."""
import pytest

import proxyshm

np = pytest.importorskip("numpy", reason="numpy does not import under this interpreter")


def test_frombuffer_is_zero_copy_and_read_only(store):
    a = np.arange(1000, dtype=np.float64)
    k = store.put(a)  # an array is a buffer: no intermediate copy
    v1, v2 = store.get(k), store.get(k)
    x, y = np.frombuffer(v1, dtype=np.float64), np.frombuffer(v2, dtype=np.float64)
    assert np.shares_memory(x, y)  # both point into the segment
    assert not np.shares_memory(x, a)
    assert not x.flags.writeable and (x == a).all()
    with pytest.raises(ValueError):
        x[0] = 1
    with pytest.raises(ValueError):
        x.setflags(write=True)
    with pytest.raises(BufferError):
        v1.release()  # the array still holds the buffer
    del x
    v1.release()
    del y
    v2.release()
    assert store.stat()["pins"] == 0


def test_reserve_into_array_then_commit(store):
    f = store.future()
    arr = np.frombuffer(f.reserve(8 * 100), dtype=np.int64)
    assert arr.flags.writeable
    arr[:] = np.arange(100)
    with pytest.raises(BufferError):
        f.commit()  # arr could still write after publication
    assert not f.done()
    del arr
    f.commit()
    with f.result(0) as v:
        assert (np.frombuffer(v, dtype=np.int64) == np.arange(100)).all()


def test_non_contiguous_array_is_refused(store):
    a = np.arange(100).reshape(10, 10)[:, ::2]
    with pytest.raises((BufferError, ValueError)):  # numpy says ValueError
        store.put(a)
    k = store.put(np.ascontiguousarray(a))
    with store.get(k) as v:
        assert len(v) == a.nbytes
