// mapping_cases: what a program may do to its anonymous mappings, each case on its own region of
// 16-64 MiB filled with a verifiable pattern: mremap (grow in place, grow by moving, shrink, move
// to a fixed address), partial munmap, mprotect, madvise(DONTNEED/FREE), pipe I/O into and out of
// the region, and MAP_FIXED over part of a region. Every case runs twice: alone, then while 4
// threads fill and verify 64 MiB of other regions (so, under a limit, other memory is evicted
// and faulted back while the operation runs).
//
// Prints "ok <case>" or "FAIL <case>: <detail>" per case and run; exits 1 if any failed.
//
// Test hook: FLTEST_CORRUPT=<case> flips one byte inside that case right before the check that
// must catch it (both runs); FLTEST_CORRUPT=background flips one in a background thread's region.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mix.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MADV_FREE
#define MADV_FREE 8
#endif

enum { kPage = 4096, kWords = kPage / 8 };
#define MiB ((size_t)1 << 20)

static char detail[1024];  // the failing case's reason; cases run on the main thread only
static const char* current_case = "";

// ---------------------------------------------------------------------------------------------
// Patterns. Word(tag, page, i) is distinct for every (tag, logical page, word) and never 0 for
// tag >= 1. "Logical page" is the page's index in the region as first mapped, so it stays the
// same when the bytes move (mremap) or the head is unmapped.

static uint64_t Word(uint32_t tag, size_t page, size_t i) {
  return Mix(((uint64_t)tag << 40) ^ ((uint64_t)page * kWords + i));
}

// Fills n pages at addr as logical pages first..first+n-1 of `tag`.
static void Fill(void* addr, size_t first, size_t n, uint32_t tag) {
  uint64_t* w = addr;
  for (size_t p = 0; p < n; ++p)
    for (size_t i = 0; i < kWords; ++i) w[p * kWords + i] = Word(tag, first + p, i);
}

static void FillMiB(uint8_t* base, size_t from_mib, size_t to_mib, uint32_t tag) {
  Fill(base + from_mib * MiB, from_mib * MiB / kPage, (to_mib - from_mib) * MiB / kPage, tag);
}

static int Check(const void* addr, size_t first, size_t n, uint32_t tag, const char* what) {
  const uint64_t* w = addr;
  for (size_t p = 0; p < n; ++p)
    for (size_t i = 0; i < kWords; ++i) {
      uint64_t want = Word(tag, first + p, i);
      uint64_t got = w[p * kWords + i];
      if (got != want) {
        snprintf(detail, sizeof detail,
                 "%s: logical page %zu (%p) byte %zu: expected 0x%016" PRIx64 " got 0x%016" PRIx64,
                 what, first + p, (const void*)(w + p * kWords), i * 8, want, got);
        return -1;
      }
    }
  return 0;
}

// Checks MiB [from, to) of a region mapped at `base` whose logical page 0 is at base.
static int CheckMiB(const uint8_t* base, size_t from_mib, size_t to_mib, uint32_t tag,
                    const char* what) {
  return Check(base + from_mib * MiB, from_mib * MiB / kPage, (to_mib - from_mib) * MiB / kPage,
               tag, what);
}

static int CheckZero(const void* addr, size_t len, const char* what) {
  const uint64_t* w = addr;
  for (size_t i = 0; i < len / 8; ++i)
    if (w[i] != 0) {
      snprintf(detail, sizeof detail, "%s: byte %zu (%p) is 0x%016" PRIx64 ", expected zeros", what,
               i * 8, (const void*)(w + i), w[i]);
      return -1;
    }
  return 0;
}

static int IsZeroPage(const uint64_t* w) {
  for (size_t i = 0; i < kWords; ++i)
    if (w[i] != 0) return 0;
  return 1;
}

static int PageIs(const uint64_t* w, size_t page, uint32_t tag) {
  for (size_t i = 0; i < kWords; ++i)
    if (w[i] != Word(tag, page, i)) return 0;
  return 1;
}

// FLTEST_CORRUPT=<current case>: flip a byte at p (once per run of the case).
static void MaybeCorrupt(void* p) {
  const char* want = getenv("FLTEST_CORRUPT");
  if (want != NULL && strcmp(want, current_case) == 0) {
    ((volatile uint8_t*)p)[123] ^= 0x10;
    fprintf(stderr, "mapping_cases: FLTEST_CORRUPT=%s: flipped byte at %p\n", want,
            (void*)((uint8_t*)p + 123));
  }
}

// ---------------------------------------------------------------------------------------------
// Access probes: does touching one byte raise SIGSEGV? Only the probing thread's SIGSEGV is
// caught; any other thread's takes the default action.

static _Thread_local sigjmp_buf probe_jump;
static _Thread_local volatile sig_atomic_t probe_armed;

static void OnSegv(int sig, siginfo_t* info, void* context) {
  (void)info;
  (void)context;
  if (probe_armed) {
    probe_armed = 0;
    siglongjmp(probe_jump, 1);
  }
  signal(sig, SIG_DFL);  // not a probe: returning re-faults and dies with the default action
}

static void InstallSegvHandler(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = OnSegv;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSEGV, &sa, NULL) != 0) {
    perror("sigaction");
    exit(2);
  }
}

// Returns 1 when the access faulted.
static int Faults(void* addr, int write) {
  volatile uint8_t* p = addr;
  if (sigsetjmp(probe_jump, 1) != 0) return 1;
  probe_armed = 1;
  if (write) {
    *p = 0x77;
  } else {
    (void)*p;
  }
  probe_armed = 0;
  return 0;
}

// The /proc/self/maps line containing addr, for failure messages.
static void MapsLineOf(const void* addr, char* out, size_t size) {
  snprintf(out, size, "(no mapping)");
  FILE* f = fopen("/proc/self/maps", "r");
  if (f == NULL) return;
  char line[512];
  while (fgets(line, sizeof line, f) != NULL) {
    uintptr_t lo, hi;
    if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &lo, &hi) == 2 && lo <= (uintptr_t)addr &&
        (uintptr_t)addr < hi) {
      line[strcspn(line, "\n")] = '\0';
      snprintf(out, size, "%s", line);
      break;
    }
  }
  fclose(f);
}

static int ExpectFault(void* addr, int write, const char* what) {
  if (Faults(addr, write)) return 0;
  char maps[512];
  MapsLineOf(addr, maps, sizeof maps);
  snprintf(detail, sizeof detail, "%s: %s of %p did not raise SIGSEGV; maps: %s", what,
           write ? "a write" : "a read", addr, maps);
  return -1;
}

static int ExpectNoFault(void* addr, int write, const char* what) {
  if (!Faults(addr, write)) return 0;
  snprintf(detail, sizeof detail, "%s: %s of %p raised SIGSEGV", what, write ? "a write" : "a read",
           addr);
  return -1;
}

// ---------------------------------------------------------------------------------------------

static uint8_t* MapOrNull(size_t len) {
  void* p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    snprintf(detail, sizeof detail, "mmap(%zu MiB): %s", len / MiB, strerror(errno));
    return NULL;
  }
  return p;
}

static int SysFail(const char* call) {
  snprintf(detail, sizeof detail, "%s: %s", call, strerror(errno));
  return -1;
}

#define TRY(expr)               \
  do {                          \
    if ((expr) != 0) goto fail; \
  } while (0)

// mremap to 48 MiB without MREMAP_MAYMOVE: the region must grow where it is. The 16 MiB above it
// are made free just before (another mapping may land there in between: then retry).
static int CaseMremapGrowInPlace(void) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    uint8_t* base = MapOrNull(48 * MiB);
    if (base == NULL) return -1;
    FillMiB(base, 0, 32, 1);
    if (munmap(base + 32 * MiB, 16 * MiB) != 0) return SysFail("munmap");
    void* r = mremap(base, 32 * MiB, 48 * MiB, 0);
    if (r == MAP_FAILED && errno == ENOMEM) {
      munmap(base, 32 * MiB);
      continue;
    }
    if (r == MAP_FAILED) return SysFail("mremap");
    if (r != base) {
      snprintf(detail, sizeof detail, "mremap without MAYMOVE moved %p to %p", base, r);
      return -1;
    }
    MaybeCorrupt(base + 7 * MiB);
    TRY(CheckMiB(base, 0, 32, 1, "old bytes after the grow"));
    TRY(CheckZero(base + 32 * MiB, 16 * MiB, "the new tail"));
    FillMiB(base, 32, 48, 2);
    TRY(CheckMiB(base, 0, 32, 1, "old bytes after writing the tail"));
    TRY(CheckMiB(base, 32, 48, 2, "the written tail"));
    munmap(base, 48 * MiB);
    return 0;
  fail:
    munmap(base, 48 * MiB);
    return -1;
  }
  snprintf(detail, sizeof detail, "the space above the region was taken 3 times (ENOMEM)");
  return -1;
}

// mremap 32 -> 64 MiB with MREMAP_MAYMOVE while a page right above blocks growing in place.
static int CaseMremapGrowMove(void) {
  uint8_t* base = MapOrNull(32 * MiB);
  if (base == NULL) return -1;
  FillMiB(base, 0, 32, 3);
  void* blocker = mmap(base + 32 * MiB, kPage, PROT_READ,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  int blocked = blocker == base + 32 * MiB;  // else something was there already: also blocks
  if (blocker != MAP_FAILED && !blocked) munmap(blocker, kPage);  // old kernel: a hint only
  uint8_t* moved = mremap(base, 32 * MiB, 64 * MiB, MREMAP_MAYMOVE);
  if (moved == MAP_FAILED) return SysFail("mremap");
  int rc = -1;
  if (blocked && moved == base) {
    snprintf(detail, sizeof detail, "grew in place over the blocking page at %p", blocker);
    goto out;
  }
  if (moved != base && ExpectFault(base + 5 * MiB, 0, "the old address after the move") != 0)
    goto out;
  MaybeCorrupt(moved + 31 * MiB);
  if (CheckMiB(moved, 0, 32, 3, "bytes after the move") != 0) goto out;
  if (CheckZero(moved + 32 * MiB, 32 * MiB, "the new tail") != 0) goto out;
  FillMiB(moved, 32, 64, 4);
  if (CheckMiB(moved, 0, 32, 3, "old bytes after writing the tail") != 0) goto out;
  if (CheckMiB(moved, 32, 64, 4, "the written tail") != 0) goto out;
  rc = 0;
out:
  munmap(moved, 64 * MiB);
  if (blocked) munmap(blocker, kPage);
  return rc;
}

// mremap 48 -> 16 MiB; the cut part faults; growing again (MAYMOVE) gives zeros there, not the
// bytes that were cut off (a pager must drop their swap copies).
static int CaseMremapShrink(void) {
  uint8_t* base = MapOrNull(48 * MiB);
  if (base == NULL) return -1;
  FillMiB(base, 0, 48, 5);
  uint8_t* r = mremap(base, 48 * MiB, 16 * MiB, 0);
  if (r == MAP_FAILED) return SysFail("mremap shrink");
  size_t len = 16 * MiB;
  if (r != base) {
    snprintf(detail, sizeof detail, "shrinking moved %p to %p", base, r);
    return -1;
  }
  TRY(ExpectFault(base + 16 * MiB, 0, "the first cut page"));
  TRY(ExpectFault(base + 48 * MiB - kPage, 0, "the last cut page"));
  MaybeCorrupt(base + 15 * MiB);
  TRY(CheckMiB(base, 0, 16, 5, "the kept 16 MiB"));
  uint8_t* g = mremap(base, 16 * MiB, 48 * MiB, MREMAP_MAYMOVE);
  if (g == MAP_FAILED) {
    SysFail("mremap grow again");
    goto fail;
  }
  base = g;
  len = 48 * MiB;
  TRY(CheckMiB(base, 0, 16, 5, "the kept 16 MiB after growing again"));
  TRY(CheckZero(base + 16 * MiB, 32 * MiB, "the regrown tail (stale bytes?)"));
  munmap(base, len);
  return 0;
fail:
  munmap(base, len);
  return -1;
}

// mremap(MREMAP_FIXED|MREMAP_MAYMOVE) of a filled region onto another filled region: the target
// holds the moved bytes, not its own; the source address faults.
static int CaseMremapFixed(void) {
  uint8_t* src = MapOrNull(32 * MiB);
  if (src == NULL) return -1;
  uint8_t* dst = MapOrNull(32 * MiB);
  if (dst == NULL) return -1;
  FillMiB(src, 0, 32, 6);
  FillMiB(dst, 0, 32, 7);
  uint8_t* r = mremap(src, 32 * MiB, 32 * MiB, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
  if (r == MAP_FAILED) return SysFail("mremap fixed");
  if (r != dst) {
    snprintf(detail, sizeof detail, "mremap FIXED returned %p, not %p", (void*)r, (void*)dst);
    return -1;
  }
  TRY(ExpectFault(src + 3 * MiB, 0, "the source after the move"));
  MaybeCorrupt(dst + 9 * MiB);
  TRY(CheckMiB(dst, 0, 32, 6, "the moved bytes at the target"));
  FillMiB(dst, 8, 16, 8);
  TRY(CheckMiB(dst, 0, 8, 6, "moved bytes after a write"));
  TRY(CheckMiB(dst, 8, 16, 8, "written bytes"));
  TRY(CheckMiB(dst, 16, 32, 6, "moved bytes after a write"));
  munmap(dst, 32 * MiB);
  return 0;
fail:
  munmap(dst, 32 * MiB);
  return -1;
}

// munmap the head, the tail and a middle piece of a 48 MiB region; the rest keeps its bytes,
// the holes fault, and a new mapping in the middle hole reads zeros.
static int CaseMunmapPartial(void) {
  uint8_t* base = MapOrNull(48 * MiB);
  if (base == NULL) return -1;
  FillMiB(base, 0, 48, 9);
  if (munmap(base, 4 * MiB) != 0) return SysFail("munmap head");
  TRY(ExpectFault(base, 0, "the unmapped head"));
  TRY(CheckMiB(base, 4, 48, 9, "after unmapping the head"));
  if (munmap(base + 44 * MiB, 4 * MiB) != 0) return SysFail("munmap tail");
  TRY(ExpectFault(base + 44 * MiB, 0, "the unmapped tail"));
  TRY(ExpectFault(base + 48 * MiB - 1, 0, "the unmapped tail's end"));
  TRY(CheckMiB(base, 4, 44, 9, "after unmapping the tail"));
  if (munmap(base + 20 * MiB, 4 * MiB) != 0) return SysFail("munmap middle");
  TRY(ExpectFault(base + 20 * MiB, 0, "the middle hole's start"));
  TRY(ExpectFault(base + 24 * MiB - 1, 1, "the middle hole's end"));
  MaybeCorrupt(base + 30 * MiB);
  TRY(CheckMiB(base, 4, 20, 9, "below the middle hole"));
  TRY(CheckMiB(base, 24, 44, 9, "above the middle hole"));
  void* m = mmap(base + 20 * MiB, 4 * MiB, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (m == base + 20 * MiB) {
    TRY(CheckZero(m, 4 * MiB, "a new mapping in the middle hole (stale bytes?)"));
    FillMiB(base, 20, 24, 10);
    TRY(CheckMiB(base, 20, 24, 10, "the refilled hole"));
    TRY(CheckMiB(base, 4, 20, 9, "below the refilled hole"));
    TRY(CheckMiB(base, 24, 44, 9, "above the refilled hole"));
  } else if (m != MAP_FAILED) {
    munmap(m, 4 * MiB);  // old kernel without MAP_FIXED_NOREPLACE: the hint was not honoured
  }
  munmap(base + 4 * MiB, 40 * MiB);
  return 0;
fail:
  munmap(base + 4 * MiB, 40 * MiB);
  return -1;
}

// PROT_NONE on the middle 8 MiB, then on the whole region, each time back to read-write.
static int CaseMprotectNone(void) {
  uint8_t* base = MapOrNull(32 * MiB);
  if (base == NULL) return -1;
  FillMiB(base, 0, 32, 11);
  if (mprotect(base + 8 * MiB, 8 * MiB, PROT_NONE) != 0) return SysFail("mprotect NONE");
  TRY(ExpectFault(base + 8 * MiB, 0, "PROT_NONE middle (start)"));
  TRY(ExpectFault(base + 12 * MiB + 100, 0, "PROT_NONE middle"));
  TRY(CheckMiB(base, 0, 8, 11, "below the PROT_NONE part"));
  TRY(CheckMiB(base, 16, 32, 11, "above the PROT_NONE part"));
  if (mprotect(base + 8 * MiB, 8 * MiB, PROT_READ | PROT_WRITE) != 0) return SysFail("mprotect RW");
  MaybeCorrupt(base + 10 * MiB);
  TRY(CheckMiB(base, 0, 32, 11, "after PROT_NONE and back"));
  FillMiB(base, 8, 16, 12);
  TRY(CheckMiB(base, 8, 16, 12, "written after PROT_NONE and back"));
  if (mprotect(base, 32 * MiB, PROT_NONE) != 0) return SysFail("mprotect NONE (whole)");
  TRY(ExpectFault(base + 20 * MiB, 0, "PROT_NONE (whole region)"));
  if (mprotect(base, 32 * MiB, PROT_READ | PROT_WRITE) != 0) return SysFail("mprotect RW (whole)");
  TRY(CheckMiB(base, 0, 8, 11, "after the whole region was PROT_NONE"));
  TRY(CheckMiB(base, 8, 16, 12, "after the whole region was PROT_NONE"));
  TRY(CheckMiB(base, 16, 32, 11, "after the whole region was PROT_NONE"));
  munmap(base, 32 * MiB);
  return 0;
fail:
  munmap(base, 32 * MiB);
  return -1;
}

// PROT_READ: every page reads back (including pages the pager had evicted); a write faults and
// changes nothing; back to read-write, writes stick.
static int CaseMprotectRead(void) {
  uint8_t* base = MapOrNull(32 * MiB);
  if (base == NULL) return -1;
  FillMiB(base, 0, 32, 13);
  MaybeCorrupt(base + 20 * MiB);
  if (mprotect(base, 32 * MiB, PROT_READ) != 0) return SysFail("mprotect READ");
  TRY(CheckMiB(base, 0, 32, 13, "reads while PROT_READ"));
  TRY(ExpectFault(base + 5 * MiB + 8, 1, "a write while PROT_READ"));
  TRY(ExpectNoFault(base + 6 * MiB, 0, "a read while PROT_READ"));
  TRY(CheckMiB(base, 5, 6, 13, "the page of the refused write"));
  if (mprotect(base, 32 * MiB, PROT_READ | PROT_WRITE) != 0) return SysFail("mprotect RW");
  FillMiB(base, 0, 4, 14);
  TRY(CheckMiB(base, 0, 4, 14, "written after PROT_READ"));
  TRY(CheckMiB(base, 4, 32, 13, "kept after PROT_READ"));
  munmap(base, 32 * MiB);
  return 0;
fail:
  munmap(base, 32 * MiB);
  return -1;
}

static int CaseMadvDontneed(void) {
  uint8_t* base = MapOrNull(32 * MiB);
  if (base == NULL) return -1;
  FillMiB(base, 0, 32, 15);
  if (madvise(base + 8 * MiB, 8 * MiB, MADV_DONTNEED) != 0) return SysFail("madvise DONTNEED");
  MaybeCorrupt(base + 20 * MiB);
  TRY(CheckZero(base + 8 * MiB, 8 * MiB, "the DONTNEED range"));
  TRY(CheckMiB(base, 0, 8, 15, "below the DONTNEED range"));
  TRY(CheckMiB(base, 16, 32, 15, "above the DONTNEED range"));
  FillMiB(base, 8, 16, 16);
  TRY(CheckMiB(base, 8, 16, 16, "written after DONTNEED"));
  TRY(CheckMiB(base, 0, 8, 15, "below, after the write"));
  TRY(CheckMiB(base, 16, 32, 15, "above, after the write"));
  munmap(base, 32 * MiB);
  return 0;
fail:
  munmap(base, 32 * MiB);
  return -1;
}

// MADV_FREE: each page of the range reads either its old bytes or all zeros; every other page is
// then written and must keep what was written.
static int CaseMadvFree(void) {
  uint8_t* base = MapOrNull(32 * MiB);
  if (base == NULL) return -1;
  FillMiB(base, 0, 32, 17);
  if (madvise(base + 8 * MiB, 16 * MiB, MADV_FREE) != 0) {
    int e = errno;
    munmap(base, 32 * MiB);
    if (e == EINVAL) return 0;  // kernel without MADV_FREE (< 4.5): nothing to test
    errno = e;
    return SysFail("madvise FREE");
  }
  const size_t first = 8 * MiB / kPage, last = 24 * MiB / kPage;
  MaybeCorrupt(base + 12 * MiB);
  size_t zeroed = 0;
  for (size_t p = first; p < last; ++p) {
    const uint64_t* w = (const uint64_t*)(base + p * kPage);
    if (IsZeroPage(w)) {
      ++zeroed;
    } else if (!PageIs(w, p, 17)) {
      snprintf(detail, sizeof detail, "MADV_FREE page %zu is neither its old bytes nor zeros", p);
      goto fail;
    }
  }
  for (size_t p = first; p < last; p += 2) Fill(base + p * kPage, p, 1, 18);
  for (size_t p = first; p < last; ++p) {
    const uint64_t* w = (const uint64_t*)(base + p * kPage);
    if ((p - first) % 2 == 0) {
      if (!PageIs(w, p, 18)) {
        snprintf(detail, sizeof detail, "MADV_FREE page %zu lost what was written after", p);
        goto fail;
      }
    } else if (!IsZeroPage(w) && !PageIs(w, p, 17)) {
      snprintf(detail, sizeof detail, "MADV_FREE page %zu (unwritten) changed", p);
      goto fail;
    }
  }
  TRY(CheckMiB(base, 0, 8, 17, "below the MADV_FREE range"));
  TRY(CheckMiB(base, 24, 32, 17, "above the MADV_FREE range"));
  (void)zeroed;
  munmap(base, 32 * MiB);
  return 0;
fail:
  munmap(base, 32 * MiB);
  return -1;
}

typedef struct {
  int fd;
  const uint8_t* from;
  size_t len;
  int err;
} PipeWriter;

static void* WriteAll(void* arg) {
  PipeWriter* w = arg;
  size_t done = 0;
  while (done < w->len) {
    ssize_t n = write(w->fd, w->from + done, w->len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      w->err = n < 0 ? errno : EIO;
      break;
    }
    done += (size_t)n;
  }
  close(w->fd);
  return NULL;
}

// write(2) from one filled region into a pipe and read(2) from the pipe into another filled
// region, at unaligned offsets: the kernel copies to and from pages that may be swapped out.
static int CasePipeIo(void) {
  const size_t len = 16 * MiB, skip = 100;
  uint8_t* src = MapOrNull(len);
  if (src == NULL) return -1;
  uint8_t* dst = MapOrNull(len);
  if (dst == NULL) return -1;
  FillMiB(src, 0, 16, 19);
  FillMiB(dst, 0, 16, 20);
  int fds[2];
  if (pipe(fds) != 0) return SysFail("pipe");
  PipeWriter writer = {fds[1], src + skip, len - 2 * skip, 0};
  pthread_t thread;
  if (pthread_create(&thread, NULL, WriteAll, &writer) != 0) return SysFail("pthread_create");
  size_t got = 0;
  int read_err = 0;
  while (got < len - 2 * skip) {
    ssize_t n = read(fds[0], dst + skip + got, len - 2 * skip - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      read_err = n < 0 ? errno : EIO;
      break;
    }
    got += (size_t)n;
  }
  pthread_join(thread, NULL);
  close(fds[0]);
  if (writer.err != 0 || read_err != 0) {
    snprintf(detail, sizeof detail, "pipe copy: write: %s, read: %s (%zu bytes arrived)",
             strerror(writer.err), strerror(read_err), got);
    goto fail;
  }
  MaybeCorrupt(dst + 3 * MiB);
  TRY(CheckMiB(src, 0, 16, 19, "the source after write(2)"));
  uint64_t expected[kWords];
  for (size_t p = 0; p < len / kPage; ++p) {
    for (size_t i = 0; i < kWords; ++i) expected[i] = Word(20, p, i);
    size_t lo = p * kPage, hi = lo + kPage;
    size_t from = lo > skip ? lo : skip, to = hi < len - skip ? hi : len - skip;
    if (from < to) memcpy((uint8_t*)expected + (from - lo), src + from, to - from);
    if (memcmp(expected, dst + lo, kPage) != 0) {
      size_t b = 0;
      while (((uint8_t*)expected)[b] == dst[lo + b]) ++b;
      snprintf(detail, sizeof detail,
               "read(2) target page %zu byte %zu: expected 0x%02x got 0x%02x", p, b,
               ((uint8_t*)expected)[b], dst[lo + b]);
      goto fail;
    }
  }
  munmap(src, len);
  munmap(dst, len);
  return 0;
fail:
  munmap(src, len);
  munmap(dst, len);
  return -1;
}

// mmap(MAP_FIXED) over the middle 8 MiB of a filled 32 MiB region: zeros there, the rest kept.
static int CaseMapFixedOver(void) {
  uint8_t* base = MapOrNull(32 * MiB);
  if (base == NULL) return -1;
  FillMiB(base, 0, 32, 21);
  void* m = mmap(base + 8 * MiB, 8 * MiB, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  if (m == MAP_FAILED) return SysFail("mmap MAP_FIXED");
  if (m != base + 8 * MiB) {
    snprintf(detail, sizeof detail, "MAP_FIXED returned %p, not %p", m, (void*)(base + 8 * MiB));
    goto fail;
  }
  MaybeCorrupt(base + 28 * MiB);
  TRY(CheckZero(base + 8 * MiB, 8 * MiB, "the MAP_FIXED part"));
  TRY(CheckMiB(base, 0, 8, 21, "below the MAP_FIXED part"));
  TRY(CheckMiB(base, 16, 32, 21, "above the MAP_FIXED part"));
  FillMiB(base, 8, 16, 22);
  TRY(CheckMiB(base, 8, 16, 22, "written into the MAP_FIXED part"));
  TRY(CheckMiB(base, 0, 8, 21, "below, after the write"));
  TRY(CheckMiB(base, 16, 32, 21, "above, after the write"));
  munmap(base, 32 * MiB);
  return 0;
fail:
  munmap(base, 32 * MiB);
  return -1;
}

// A signal handler that reads and writes managed memory, some of it evicted: it must see the
// bytes, and its writes must stay (faults taken inside a handler are served like any other).
static uint8_t* signal_region;
static volatile sig_atomic_t signal_wrong;

static void OnUsr1(int sig) {
  (void)sig;
  const size_t pages = 8 * MiB / 4096;  // [0, 8 MiB) keeps tag 23 throughout
  for (size_t p = 0; p < pages; p += 7) {
    const uint64_t* w = (const uint64_t*)(signal_region + p * 4096);
    if (w[0] != Word(23, p, 0)) ++signal_wrong;
  }
  Fill(signal_region + 24 * MiB, 24 * MiB / 4096, 8 * MiB / 4096, 24);
}

static int CaseSignalHandler(void) {
  uint8_t* base = MapOrNull(32 * MiB);
  if (base == NULL) return -1;
  FillMiB(base, 0, 32, 23);
  signal_region = base;
  signal_wrong = 0;
  struct sigaction action = {0};
  struct sigaction previous;
  action.sa_handler = OnUsr1;
  sigemptyset(&action.sa_mask);
  if (sigaction(SIGUSR1, &action, &previous) != 0) return SysFail("sigaction");
  for (int round = 0; round < 4; ++round) {
    FillMiB(base, 8, 24, (uint32_t)(30 + round));  // pushes other pages out meanwhile
    raise(SIGUSR1);
  }
  sigaction(SIGUSR1, &previous, NULL);
  MaybeCorrupt(base + 26 * MiB);
  if (signal_wrong != 0) {
    snprintf(detail, sizeof detail, "the signal handler read %d wrong pages",
             (int)signal_wrong);
    goto fail;
  }
  TRY(CheckMiB(base, 0, 8, 23, "read by the handler"));
  TRY(CheckMiB(base, 8, 24, 33, "written between signals"));
  TRY(CheckMiB(base, 24, 32, 24, "written by the handler"));
  munmap(base, 32 * MiB);
  return 0;
fail:
  munmap(base, 32 * MiB);
  return -1;
}

// ---------------------------------------------------------------------------------------------
// Background paging: 4 threads, each with its own 16 MiB region, fill and verify generation
// after generation until told to stop.

enum { kBackgroundThreads = 4 };
#define kBackgroundBytes (16 * MiB)

typedef struct {
  int index;
  uint8_t* region;
  atomic_int* stop;
  char failure[512];  // empty when every pass verified
  unsigned passes;
} Background;

static void* BackgroundLoop(void* arg) {
  Background* b = arg;
  const size_t pages = kBackgroundBytes / kPage;
  const char* corrupt = getenv("FLTEST_CORRUPT");
  int corrupt_once = b->index == 0 && corrupt != NULL && strcmp(corrupt, "background") == 0;
  for (uint32_t gen = 100 + 1000 * (uint32_t)b->index;
       !atomic_load_explicit(b->stop, memory_order_relaxed); ++gen) {
    for (size_t p = 0; p < pages; ++p) Fill(b->region + p * kPage, p, 1, gen);
    if (corrupt_once) {
      b->region[5 * MiB + 77] ^= 1;
      corrupt_once = 0;
    }
    for (size_t p = 0; p < pages; ++p) {
      const uint64_t* w = (const uint64_t*)(b->region + p * kPage);
      if (!PageIs(w, p, gen)) {
        snprintf(b->failure, sizeof b->failure, "thread %d generation %" PRIu32 " page %zu wrong",
                 b->index, gen, p);
        return NULL;
      }
    }
    ++b->passes;
  }
  return NULL;
}

// ---------------------------------------------------------------------------------------------

typedef struct {
  const char* name;
  int (*run)(void);
} Case;

static const Case kCases[] = {
    {"mremap_grow_in_place", CaseMremapGrowInPlace},
    {"mremap_grow_maymove", CaseMremapGrowMove},
    {"mremap_shrink", CaseMremapShrink},
    {"mremap_fixed", CaseMremapFixed},
    {"munmap_head_tail_middle", CaseMunmapPartial},
    {"mprotect_none", CaseMprotectNone},
    {"mprotect_read", CaseMprotectRead},
    {"madvise_dontneed", CaseMadvDontneed},
    {"madvise_free", CaseMadvFree},
    {"pipe_read_write", CasePipeIo},
    {"mmap_fixed_over_middle", CaseMapFixedOver},
    {"signal_handler", CaseSignalHandler},
};

static int RunCases(const char* suffix) {
  int failed = 0;
  for (size_t i = 0; i < sizeof kCases / sizeof kCases[0]; ++i) {
    current_case = kCases[i].name;
    detail[0] = '\0';
    if (kCases[i].run() == 0) {
      printf("ok %s%s\n", kCases[i].name, suffix);
    } else {
      printf("FAIL %s%s: %s\n", kCases[i].name, suffix, detail);
      failed = 1;
    }
  }
  current_case = "";
  return failed;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  InstallSegvHandler();
  int failed = RunCases("");

  atomic_int stop = 0;
  Background background[kBackgroundThreads];
  pthread_t threads[kBackgroundThreads];
  for (int t = 0; t < kBackgroundThreads; ++t) {
    background[t] = (Background){.index = t, .stop = &stop};
    background[t].region = MapOrNull(kBackgroundBytes);
    if (background[t].region == NULL) {
      printf("FAIL background: %s\n", detail);
      return 1;
    }
    int err = pthread_create(&threads[t], NULL, BackgroundLoop, &background[t]);
    if (err != 0) {
      printf("FAIL background: pthread_create: %s\n", strerror(err));
      return 1;
    }
  }
  failed |= RunCases(" (with 4 threads paging)");
  atomic_store(&stop, 1);
  unsigned passes = 0;
  for (int t = 0; t < kBackgroundThreads; ++t) {
    pthread_join(threads[t], NULL);
    passes += background[t].passes;
    if (background[t].failure[0] != '\0') {
      printf("FAIL background: %s\n", background[t].failure);
      failed = 1;
    }
    munmap(background[t].region, kBackgroundBytes);
  }
  if (!failed) printf("ok background (%u passes over 16 MiB regions)\n", passes);
  return failed;
}
