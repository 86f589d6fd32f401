#!/usr/bin/python3
"""snapshot_python: faultline's snapshot API from a program under `faultline run` (python3).

Under LD_PRELOAD, libfaultline-preload.so also exports the fl_* API, serving its own runtime;
this program reaches it through ctypes. A 96 MiB private mmap (run it under a 32M limit):
  1. two threads rewrite their own 1 MiB slices round after round (each page whole, stamped with
     round and page) while the rest holds a fixed pattern; a snapshot is taken meanwhile, and
     must read as one moment of each writer (rounds R+1 up to a page, R after it; the page being
     written may hold both) and the fixed pattern elsewhere;
  2. the memory is then rewritten whole: the snapshot, read through fl_snapshot_read and through
     its read-only mapping, is unchanged;
  3. it is saved, released, and the file opened as a new region: byte for byte the same;
  4. a second snapshot outlives the munmap of its source.
Prints "ok ..." and exits 0, or "FAIL ..." and exits 1.
"""
import ctypes
import hashlib
import mmap
import os
import struct
import sys
import threading
import time

PAGE = 4096
MiB = 1 << 20
SIZE = 96 * MiB
NPAGES = SIZE // PAGE
SLICE = MiB // PAGE  # pages per writer
WRITERS = 2
COLD_FIRST = WRITERS * SLICE

lib = ctypes.CDLL(None, use_errno=True)
vp, sz = ctypes.c_void_p, ctypes.c_size_t


def declare(name, restype, *argtypes):
    try:
        f = getattr(lib, name)
    except AttributeError:
        print(f"FAIL {name} is not available: run this under `faultline run`")
        sys.exit(1)
    f.restype, f.argtypes = restype, list(argtypes)
    return f


fl_snapshot_create = declare("fl_snapshot_create", ctypes.c_int, vp, sz, ctypes.POINTER(vp))
fl_snapshot_data = declare("fl_snapshot_data", vp, vp)
fl_snapshot_read = declare("fl_snapshot_read", ctypes.c_int, vp, sz, vp, sz)
fl_snapshot_save = declare("fl_snapshot_save", ctypes.c_int, vp, ctypes.c_char_p)
fl_snapshot_release = declare("fl_snapshot_release", ctypes.c_int, vp)
fl_snapshot_open = declare("fl_snapshot_open", ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(vp),
                           ctypes.POINTER(sz))
fl_unmap = declare("fl_unmap", ctypes.c_int, vp, sz)
fl_last_error = declare("fl_last_error", ctypes.c_char_p)


def fail(why):
    print(f"FAIL {why}")
    sys.exit(1)


def check(rc, what):
    if rc != 0:
        fail(f"{what}: {os.strerror(-rc)}: {fl_last_error().decode()}")


def cold_page(i):
    return struct.pack("<Q", (i * 0x9E3779B97F4A7C15 + 7) & 0xFFFFFFFFFFFFFFFF) * (PAGE // 8)


def stamp(rnd, i):
    return struct.pack("<Q", rnd << 32 | i) * (PAGE // 8)


def check_slice(data, first):
    """One moment of a writer that stamps pages first.. in order, word by word."""
    words = struct.unpack_from(f"<{SLICE * PAGE // 8}Q", data, first * PAGE)
    rnd = words[0] >> 32
    top = rnd
    for k, word in enumerate(words):
        page = first + k // (PAGE // 8)
        if word != 0 and word & 0xFFFFFFFF != page:
            return f"page {page} holds a stamp of page {word & 0xFFFFFFFF}"
        if word >> 32 == rnd:
            continue
        if rnd == top and rnd > 0 and word >> 32 == rnd - 1:
            rnd -= 1
            continue
        return f"page {page}: round {word >> 32} where {rnd} was due"
    return None


def check_cold(data):
    for i in range(COLD_FIRST, NPAGES):
        if data[i * PAGE:(i + 1) * PAGE] != cold_page(i):
            return f"page {i} of the fixed part is wrong"
    return None


def main():
    m = mmap.mmap(-1, SIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    base = ctypes.addressof(ctypes.c_char.from_buffer(m))
    for i in range(COLD_FIRST, NPAGES):
        m[i * PAGE:(i + 1) * PAGE] = cold_page(i)

    stop = threading.Event()

    def writer(t):
        first, rnd = t * SLICE, 0
        while not stop.is_set():
            rnd += 1
            for i in range(first, first + SLICE):
                m[i * PAGE:(i + 1) * PAGE] = stamp(rnd, i)

    writers = [threading.Thread(target=writer, args=(t,)) for t in range(WRITERS)]
    for w in writers:
        w.start()
    time.sleep(0.5)
    snap = vp()
    check(fl_snapshot_create(base, SIZE, ctypes.byref(snap)), "fl_snapshot_create")
    time.sleep(0.2)
    stop.set()
    for w in writers:
        w.join()

    taken = ctypes.create_string_buffer(SIZE)
    check(fl_snapshot_read(snap, 0, taken, SIZE), "fl_snapshot_read")
    data = taken.raw
    for t in range(WRITERS):
        why = check_slice(data, t * SLICE)
        if why:
            fail(f"snapshot, writer {t}: {why}")
    why = check_cold(data)
    if why:
        fail(f"snapshot: {why}")
    digest = hashlib.sha256(data).hexdigest()

    # Rewrite everything: the snapshot stays as it was.
    for i in range(NPAGES):
        m[i * PAGE:(i + 1) * PAGE] = stamp(1000, i)
    check(fl_snapshot_read(snap, 0, taken, SIZE), "fl_snapshot_read after the rewrite")
    if hashlib.sha256(taken.raw).hexdigest() != digest:
        fail("the snapshot changed when the memory was rewritten")
    if hashlib.sha256(ctypes.string_at(fl_snapshot_data(snap), SIZE)).hexdigest() != digest:
        fail("the snapshot's mapping differs from fl_snapshot_read")

    # Save, release, open: the same bytes.
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"snapshot-{os.getpid()}.fls")
    check(fl_snapshot_save(snap, path.encode()), "fl_snapshot_save")
    check(fl_snapshot_release(snap), "fl_snapshot_release")
    addr, length = vp(), sz()
    check(fl_snapshot_open(path.encode(), ctypes.byref(addr), ctypes.byref(length)),
          "fl_snapshot_open")
    if length.value != SIZE:
        fail(f"the opened snapshot has {length.value} bytes, not {SIZE}")
    if hashlib.sha256(ctypes.string_at(addr, SIZE)).hexdigest() != digest:
        fail("the opened snapshot file differs from the snapshot")
    check(fl_unmap(addr, length), "fl_unmap")
    os.unlink(path)
    if any(m[i * PAGE:(i + 1) * PAGE] != stamp(1000, i) for i in range(NPAGES)):
        fail("the memory itself is wrong after the rewrite")

    # A snapshot outlives its source: munmap (mmap.close) of the memory it was taken of.
    check(fl_snapshot_create(base, SIZE, ctypes.byref(snap)), "fl_snapshot_create")
    m.close()
    check(fl_snapshot_read(snap, 0, taken, SIZE), "fl_snapshot_read after munmap")
    data = taken.raw
    if any(data[i * PAGE:(i + 1) * PAGE] != stamp(1000, i) for i in range(NPAGES)):
        fail("a snapshot lost bytes when its source was unmapped")
    check(fl_snapshot_release(snap), "fl_snapshot_release")
    print(f"ok {NPAGES} pages: snapshot under {WRITERS} writers consistent, unchanged by a "
          f"rewrite, saved and opened byte for byte, kept after its source was unmapped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
