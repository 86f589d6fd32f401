#!/usr/bin/env python3
"""The mmap experiment of "Memory Management: the Abstraction and the Machinery", without its
pauses, plus a read-back: maps 512 MiB of anonymous memory, touches every 4 KiB page, then reads
every page back. Run it under `faultline run --limit 128M` (./quickstart demo does): the pages
written stay readable while the process's RSS, printed as it goes, holds near the limit.
Exits 1 if any page reads back wrong."""
import mmap
import os
import sys

SIZE = 512 * 1024 * 1024
PAGE = 4096
STEP = 64 * 1024 * 1024


def rss_mib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return -1


def stamp(offset):
    return (offset // PAGE).to_bytes(8, "little")


print("PID:", os.getpid())
mapping = mmap.mmap(-1, SIZE, access=mmap.ACCESS_WRITE)
print(f"Reserved {SIZE >> 20} MiB of virtual memory; RSS {rss_mib()} MiB")
for offset in range(0, SIZE, PAGE):
    mapping[offset:offset + 8] = stamp(offset)  # first touch: a page fault
    if (offset + PAGE) % STEP == 0:
        print(f"Touched {(offset + PAGE) >> 20:4} MiB; RSS {rss_mib():4} MiB", flush=True)
wrong = sum(1 for offset in range(0, SIZE, PAGE) if mapping[offset:offset + 8] != stamp(offset))
print(f"Read back {SIZE >> 20} MiB: {wrong} wrong pages; RSS {rss_mib()} MiB")
sys.exit(1 if wrong else 0)
