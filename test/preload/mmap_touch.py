#!/usr/bin/python3
"""mmap_touch: Python's anonymous mmap under a limit (run with Debian's /usr/bin/python3).

mmap.mmap(-1, SIZE) is a MAP_SHARED|MAP_ANONYMOUS mapping (shmem) in CPython. SIZE is argv[1]
(bytes, or with a K/M/G suffix; default 512M).
  pass 1: a distinct 8-byte value into every 4 KiB page (at a page-dependent offset), then every
          page read back whole: the value there, zeros elsewhere.
  pass 2: every page overwritten by slice assignment with a 4096-byte pattern of its own (its
          index, then a window of a fixed pseudo-random block), then every page read back.
Prints "ok ..." and exits 0, or "FAIL ..." and exits 1 at the first wrong page.

Test hook: FLTEST_CORRUPT=1 (or 2) flips one byte before pass 1's (or pass 2's) verification.
"""
import mmap
import os
import random
import struct
import sys

PAGE = 4096


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if text[-1:].upper() in units:
        return int(text[:-1]) * units[text[-1:].upper()]
    return int(text)


def value(i):
    return (i * 0x9E3779B97F4A7C15 + 0x0123456789ABCDEF) & 0xFFFFFFFFFFFFFFFF


def fail(what, page, expected, got):
    diff = next(k for k in range(PAGE) if expected[k] != got[k])
    print(f"FAIL {what}: page {page} byte {diff}: expected 0x{expected[diff]:02x} "
          f"got 0x{got[diff]:02x}")
    sys.exit(1)


def maybe_corrupt(m, npages, which):
    if os.environ.get("FLTEST_CORRUPT") == which:
        at = (npages // 3) * PAGE + 1000
        m[at] ^= 0x40
        print(f"FLTEST_CORRUPT: flipped byte {at}", file=sys.stderr)


def main():
    size = parse_size(sys.argv[1]) if len(sys.argv) > 1 else 512 << 20
    npages = size // PAGE
    m = mmap.mmap(-1, npages * PAGE)
    pack = struct.Struct("<Q")
    zero = bytes(PAGE)

    # Pass 1: one value per page, at offset (8 * i) % PAGE.
    for i in range(npages):
        pack.pack_into(m, i * PAGE + (8 * i) % PAGE, value(i))
    maybe_corrupt(m, npages, "1")
    for i in range(npages):
        off = (8 * i) % PAGE
        got = m[i * PAGE:(i + 1) * PAGE]
        if pack.unpack_from(got, off)[0] != value(i) or got.count(0) < PAGE - 8 or \
                got[:off] != zero[:off] or got[off + 8:] != zero[off + 8:]:
            fail("pass 1", i, zero[:off] + pack.pack(value(i)) + zero[off + 8:], got)

    # Pass 2: whole pages by slice assignment.
    block = random.Random(20240601).randbytes(3 * PAGE)

    def pattern(i):
        start = (i * 2654435761) % (2 * PAGE)
        return pack.pack(value(i) ^ 0xFFFF) + block[start:start + PAGE - 8]

    for i in range(npages):
        m[i * PAGE:(i + 1) * PAGE] = pattern(i)
    maybe_corrupt(m, npages, "2")
    for i in range(npages):
        want = pattern(i)
        got = m[i * PAGE:(i + 1) * PAGE]
        if got != want:
            fail("pass 2", i, want, got)

    m.close()
    print(f"ok {npages} pages ({npages * PAGE >> 20} MiB), 2 passes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
