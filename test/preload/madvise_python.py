#!/usr/bin/python3
"""madvise_python: a real program's madvise and mlockall under `faultline run` (Debian's python3).

A 128 MiB anonymous mmap (run it under a 32M limit), one distinct page pattern per page, then
each piece of advice checked by its effect, the kernel's own account of the mapping's resident
memory (Rss in /proc/self/smaps) included, and every byte verified after each step:
  PAGEOUT   the range leaves memory at once (Rss drops by its size); its bytes are kept.
  WILLNEED  swapped pages come back without being touched (mincore, before any access).
  DONTNEED  the range reads as zeros; the rest is untouched.
  FREE      pages written after the advice keep their new bytes; the others read as their old
            bytes or as zeros (Linux's contract), and as zeros once paged out.
  SEQUENTIAL / RANDOM / NORMAL  accepted; a scan under each reads the right bytes.
  mlockall(MCL_FUTURE | MCL_ONFAULT)  a mapping made afterwards stays resident while the rest is
            rewritten; munlockall() ends that.
Four threads verify disjoint quarters at once. Prints "ok ..." and exits 0, or "FAIL ..." and
exits 1. Natively (no faultline) every check holds too, except that the kernel keeps everything
resident, so the Rss checks that need a limit are skipped when FAULTLINE_LIMIT is unset.
"""
import ctypes
import mmap
import os
import struct
import sys
import threading
import time

PAGE = 4096
MiB = 1 << 20
SIZE = 128 * MiB
NPAGES = SIZE // PAGE
MADV_COLD = 20  # not in Python's mmap module on Debian 12
MADV_PAGEOUT = 21
MCL_FUTURE, MCL_ONFAULT = 2, 4
UNDER_FAULTLINE = bool(os.environ.get("FAULTLINE_LIMIT"))

libc = ctypes.CDLL(None, use_errno=True)  # resolves mlockall to the preloaded interposer
pack = struct.Struct("<Q")
ZERO = bytes(PAGE)


def fail(why):
    print(f"FAIL {why}")
    sys.exit(1)


def pattern(page, seed):
    word = pack.pack((page * 0x9E3779B97F4A7C15 + seed) & 0xFFFFFFFFFFFFFFFF)
    return word * (PAGE // 8)


def address_of(m):
    return ctypes.addressof(ctypes.c_char.from_buffer(m))


def smaps_rss(start):
    """Rss in bytes of the mapping that starts at `start`."""
    with open("/proc/self/smaps") as f:
        inside = False
        for line in f:
            head = line.split(None, 1)[0]
            if "-" in head and not head.endswith(":"):
                inside = int(head.split("-")[0], 16) == start
            elif inside and head == "Rss:":
                return int(line.split()[1]) * 1024
    fail(f"no mapping starts at {start:#x}")


def resident(start, length):
    """Resident bytes of [start, start + length) by the kernel's account (mincore)."""
    vec = (ctypes.c_ubyte * (length // PAGE))()
    if libc.mincore(ctypes.c_void_p(start), ctypes.c_size_t(length), vec) != 0:
        fail(f"mincore: {os.strerror(ctypes.get_errno())}")
    return sum(b & 1 for b in vec) * PAGE


def fill(m, first, count, seed):
    for i in range(first, first + count):
        m[i * PAGE:(i + 1) * PAGE] = pattern(i, seed)


def verify(m, first, count, expect, threads=4):
    """expect(i) -> the bytes page i must hold, or a tuple of acceptable contents."""
    problems = []

    def check(lo, hi):
        for i in range(lo, hi):
            got = m[i * PAGE:(i + 1) * PAGE]
            want = expect(i)
            if got not in (want if isinstance(want, tuple) else (want,)):
                problems.append(f"page {i} holds the wrong bytes")
                return

    step = (count + threads - 1) // threads
    workers = [threading.Thread(target=check, args=(lo, min(first + count, lo + step)))
               for lo in range(first, first + count, step)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if problems:
        fail(problems[0])


def main():
    m = mmap.mmap(-1, SIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    base = address_of(m)
    seeds = [1] * NPAGES  # the pattern seed each page holds now; 0 = zeros
    expect = lambda i: pattern(i, seeds[i]) if seeds[i] else ZERO
    fill(m, 0, NPAGES, 1)
    verify(m, 0, NPAGES, expect)

    # PAGEOUT of the last 16 MiB, read just before (so resident under the 32M limit).
    tail = NPAGES - 16 * MiB // PAGE
    verify(m, tail, NPAGES - tail, expect, threads=1)
    rss = smaps_rss(base)
    m.madvise(MADV_PAGEOUT, tail * PAGE, 16 * MiB)
    dropped = rss - smaps_rss(base)
    if UNDER_FAULTLINE and dropped < 14 * MiB:
        fail(f"PAGEOUT of 16 MiB lowered Rss by only {dropped >> 10} KiB")
    verify(m, tail, NPAGES - tail, expect)

    # WILLNEED of 8 MiB that are out of memory: they come back with no access (other pages of
    # the mapping leave for them, so this is counted per page with mincore, not by Rss).
    m.madvise(MADV_PAGEOUT, 0, 8 * MiB)
    if UNDER_FAULTLINE and resident(base, 8 * MiB) != 0:
        fail(f"PAGEOUT of 8 MiB left {resident(base, 8 * MiB) >> 10} KiB resident")
    m.madvise(mmap.MADV_WILLNEED, 0, 8 * MiB)
    deadline = time.monotonic() + 10
    while UNDER_FAULTLINE and resident(base, 8 * MiB) < 8 * MiB:
        if time.monotonic() > deadline:
            fail(f"WILLNEED of 8 MiB brought back {resident(base, 8 * MiB) >> 10} KiB in 10 s")
        time.sleep(0.01)
    verify(m, 0, 8 * MiB // PAGE, expect)

    # DONTNEED of 8 MiB in the middle: zeros there, the rest untouched.
    mid = NPAGES // 2
    m.madvise(mmap.MADV_DONTNEED, mid * PAGE, 8 * MiB)
    for i in range(mid, mid + 8 * MiB // PAGE):
        seeds[i] = 0
    verify(m, 0, NPAGES, expect)

    # FREE of 8 MiB, then every other page rewritten: those are kept, the rest may be zeros
    # now and must be zeros once paged out.
    free_first = NPAGES // 4
    free_count = 8 * MiB // PAGE
    m.madvise(mmap.MADV_FREE, free_first * PAGE, free_count * PAGE)
    for i in range(free_first, free_first + free_count, 2):
        m[i * PAGE:(i + 1) * PAGE] = pattern(i, 2)
        seeds[i] = 2
    either = lambda i: (pattern(i, 1), ZERO) if seeds[i] == 1 else expect(i)
    verify(m, free_first, free_count, either)
    m.madvise(MADV_PAGEOUT, free_first * PAGE, free_count * PAGE)
    for i in range(free_first + 1, free_first + free_count, 2):
        seeds[i] = 0
    verify(m, 0, NPAGES, expect)

    # Readahead advice and COLD: accepted, and scans under them read the right bytes.
    for advice in (mmap.MADV_SEQUENTIAL, mmap.MADV_RANDOM, mmap.MADV_NORMAL, MADV_COLD):
        m.madvise(advice)
        verify(m, 0, NPAGES, expect)

    # mlockall(MCL_FUTURE | MCL_ONFAULT): a new 8 MiB mapping stays resident while the big one
    # is rewritten; munlockall() ends that.
    if libc.mlockall(MCL_FUTURE | MCL_ONFAULT) != 0:
        fail(f"mlockall: {os.strerror(ctypes.get_errno())}")
    locked = mmap.mmap(-1, 8 * MiB, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    fill(locked, 0, 8 * MiB // PAGE, 3)
    fill(m, 0, NPAGES, 4)
    seeds = [4] * NPAGES
    kept = resident(address_of(locked), 8 * MiB)
    if kept != 8 * MiB:
        fail(f"a mapping made after mlockall(MCL_FUTURE) kept {kept >> 10} KiB of 8 MiB")
    if libc.munlockall() != 0:
        fail(f"munlockall: {os.strerror(ctypes.get_errno())}")
    fill(m, 0, NPAGES, 5)
    seeds = [5] * NPAGES
    verify(locked, 0, 8 * MiB // PAGE, lambda i: pattern(i, 3))
    verify(m, 0, NPAGES, expect)

    print(f"ok {NPAGES} pages, PAGEOUT dropped {dropped >> 20} MiB of Rss, "
          f"WILLNEED, DONTNEED, FREE, readahead advice, COLD, mlockall/munlockall")
    return 0


if __name__ == "__main__":
    sys.exit(main())
