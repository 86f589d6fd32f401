// fork_eviction: fork under a memory limit. A private anonymous region of SIZE bytes (argv[1],
// default 256 MiB; a size with an optional K/M/G suffix) holds in every 8-byte word a value
// derived from (page index, word index, the page's generation). Children, grandchildren and an
// orphan verify every byte of every page, write their own generations and verify those; the
// parent checks after each child that the child's writes stayed invisible to it.
//
// Phases (each prints "ok <phase>" or "FAIL <phase>: ..."):
//   fill        the parent fills and verifies with 4 threads
//   sequential  4 children one after another; after each the parent verifies and rewrites half
//   concurrent  2 children at once, then the same parent check and rewrite
//   nested      a child forks a grandchild; both verify, the grandchild's writes stay its own
//   orphan      top forks P, P forks C and exits at once; C sleeps 0.5 s, verifies, writes and
//               verifies its own generation, reports one byte through a pipe inherited from top
// Exit status: 0 only when every phase verified; 1 otherwise.
//
// C11 + pthreads, no other dependency. Nothing is exec'd.
//
// Test hook: FLTEST_CORRUPT=<phase> flips one byte at that phase, where the check that follows
// must catch it (fill: in the parent before its first verify; sequential/concurrent/nested/orphan:
// in the (grand)child before it verifies; parent: in the parent after the first child exits).
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mix.h"

enum { kPage = 4096, kWords = kPage / 8, kThreads = 4 };

static uint8_t* region;
static size_t npages;
static uint32_t* generation;  // generation[p]: what page p holds in this process

// Distinct for every (page, word, generation) with page < 2^31 and generation < 2^24; never 0
// for generation >= 1, so a page of zeros never passes.
static uint64_t Word(size_t page, size_t word, uint32_t gen) {
  return Mix(((uint64_t)gen << 40) ^ ((uint64_t)page * kWords + word));
}

static void FillPage(size_t p, uint32_t gen) {
  uint64_t* w = (uint64_t*)(region + p * kPage);
  for (size_t i = 0; i < kWords; ++i) w[i] = Word(p, i, gen);
}

typedef struct {
  int bad;
  size_t page, offset;
  uint64_t expected, got;
} Mismatch;

static int VerifyPage(size_t p, uint32_t gen, Mismatch* m) {
  const uint64_t* w = (const uint64_t*)(region + p * kPage);
  for (size_t i = 0; i < kWords; ++i) {
    uint64_t want = Word(p, i, gen);
    uint64_t got = w[i];
    if (got != want) {
      size_t b = 0;
      while (((want >> (8 * b)) & 0xff) == ((got >> (8 * b)) & 0xff)) ++b;  // little endian
      m->bad = 1;
      m->page = p;
      m->offset = i * 8 + b;
      m->expected = want;
      m->got = got;
      return -1;
    }
  }
  return 0;
}

// A pass over [first, last) pages by one thread. op: 'f' fills with generation[p], 'v' verifies.
typedef struct {
  size_t first, last;
  char op;
  Mismatch mismatch;
} Slice;

static void* RunSlice(void* arg) {
  Slice* s = arg;
  for (size_t p = s->first; p < s->last; ++p) {
    if (s->op == 'f') {
      FillPage(p, generation[p]);
    } else if (VerifyPage(p, generation[p], &s->mismatch) != 0) {
      break;
    }
  }
  return NULL;
}

// Fills ('f') or verifies ('v') every page against generation[] with kThreads threads. On a
// mismatch prints the first bad page (lowest address) with `who` and returns -1.
static int Parallel(char op, const char* who) {
  pthread_t threads[kThreads];
  Slice slices[kThreads];
  for (int t = 0; t < kThreads; ++t) {
    slices[t] =
        (Slice){.first = npages * t / kThreads, .last = npages * (t + 1) / kThreads, .op = op};
    int err = pthread_create(&threads[t], NULL, RunSlice, &slices[t]);
    if (err != 0) {
      fprintf(stderr, "%s: pthread_create: %s\n", who, strerror(err));
      exit(1);
    }
  }
  for (int t = 0; t < kThreads; ++t) pthread_join(threads[t], NULL);
  for (int t = 0; t < kThreads; ++t) {
    const Mismatch* m = &slices[t].mismatch;
    if (m->bad) {
      printf(
          "FAIL %s: pid %d page %zu offset %zu (byte 0x%zx of the region): expected word "
          "0x%016" PRIx64 " got 0x%016" PRIx64 " (generation %" PRIu32 ")\n",
          who, (int)getpid(), m->page, m->offset, m->page * kPage + m->offset, m->expected, m->got,
          generation[m->page]);
      fflush(stdout);
      return -1;
    }
  }
  return 0;
}

static void SetAll(uint32_t gen) {
  for (size_t p = 0; p < npages; ++p) generation[p] = gen;
}

static void MaybeCorrupt(const char* phase) {
  const char* want = getenv("FLTEST_CORRUPT");
  if (want != NULL && strcmp(want, phase) == 0) {
    size_t at = (npages / 3) * kPage + 1234;
    region[at] ^= 0x5a;
    fprintf(stderr, "fork_eviction: FLTEST_CORRUPT=%s: flipped byte 0x%zx in pid %d\n", phase, at,
            (int)getpid());
  }
}

// What every forked child does: verify the inherited memory, write its own generation, verify
// that. Returns the exit status for the child.
static int ChildWork(const char* who, uint32_t own_gen) {
  MaybeCorrupt(who);
  if (Parallel('v', who) != 0) return 1;
  SetAll(own_gen);
  if (Parallel('f', who) != 0 || Parallel('v', who) != 0) return 1;
  return 0;
}

static pid_t ForkOrDie(void) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    exit(1);
  }
  return pid;
}

// Waits for pid; returns 0 when it exited with status 0.
static int Reap(pid_t pid, const char* who) {
  int status;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      perror("waitpid");
      return -1;
    }
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
  if (WIFSIGNALED(status)) {
    printf("FAIL %s: child %d killed by signal %d\n", who, (int)pid, WTERMSIG(status));
  } else {
    printf("FAIL %s: child %d exited with status %d\n", who, (int)pid, WEXITSTATUS(status));
  }
  fflush(stdout);
  return -1;
}

// After children exit: the parent's memory must still hold its own generations; then half of
// the pages (alternating with `round`) get generation `gen`.
static int ParentCheckAndRewriteHalf(const char* who, int round, uint32_t gen) {
  if (Parallel('v', who) != 0) return -1;
  for (size_t p = (size_t)(round & 1); p < npages; p += 2) generation[p] = gen;
  if (Parallel('f', who) != 0 || Parallel('v', who) != 0) return -1;
  return 0;
}

static size_t ParseSize(const char* s) {
  char* end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || end == s) return 0;
  switch (*end) {
    case 'k':
    case 'K':
      v <<= 10;
      ++end;
      break;
    case 'm':
    case 'M':
      v <<= 20;
      ++end;
      break;
    case 'g':
    case 'G':
      v <<= 30;
      ++end;
      break;
    default:
      break;
  }
  if (*end != '\0') return 0;
  return (size_t)v;
}

static int PhaseSequential(void) {
  for (int i = 0; i < 4; ++i) {
    pid_t pid = ForkOrDie();
    if (pid == 0) _exit(ChildWork("sequential", 1000 + (uint32_t)i));
    if (Reap(pid, "sequential") != 0) return -1;
    if (i == 0) MaybeCorrupt("parent");
    if (ParentCheckAndRewriteHalf("sequential (parent after child)", i, 10 + (uint32_t)i) != 0)
      return -1;
  }
  return 0;
}

static int PhaseConcurrent(void) {
  pid_t pids[2];
  for (int i = 0; i < 2; ++i) {
    pids[i] = ForkOrDie();
    if (pids[i] == 0) _exit(ChildWork("concurrent", 2000 + (uint32_t)i));
  }
  int rc = 0;
  for (int i = 0; i < 2; ++i) rc |= Reap(pids[i], "concurrent");
  if (rc != 0) return -1;
  return ParentCheckAndRewriteHalf("concurrent (parent after children)", 0, 20);
}

static int PhaseNested(void) {
  pid_t child = ForkOrDie();
  if (child == 0) {
    // The child writes a generation of its own first, so the grandchild inherits pages that are
    // the child's private copies, some evicted, and must see them and not the parent's.
    for (size_t p = 0; p < npages; p += 3) generation[p] = 3000;
    if (Parallel('f', "nested (child)") != 0) _exit(1);
    pid_t grandchild = ForkOrDie();
    if (grandchild == 0) _exit(ChildWork("nested", 3001));
    if (Reap(grandchild, "nested") != 0) _exit(1);
    _exit(Parallel('v', "nested (child after grandchild)") == 0 ? 0 : 1);
  }
  if (Reap(child, "nested (child)") != 0) return -1;
  return ParentCheckAndRewriteHalf("nested (parent after child)", 1, 30);
}

static int PhaseOrphan(void) {
  int fds[2];
  if (pipe(fds) != 0) {
    perror("pipe");
    return -1;
  }
  pid_t p = ForkOrDie();
  if (p == 0) {
    close(fds[0]);
    pid_t c = ForkOrDie();
    if (c == 0) {
      // C: outlives P; its parent becomes init or a subreaper while it works.
      const struct timespec half = {0, 500 * 1000 * 1000};
      nanosleep(&half, NULL);
      char result = ChildWork("orphan", 4000) == 0 ? '0' : '1';
      if (write(fds[1], &result, 1) != 1) _exit(1);
      _exit(0);
    }
    _exit(0);  // P exits at once, leaving C orphaned.
  }
  close(fds[1]);
  if (Reap(p, "orphan (P)") != 0) {
    close(fds[0]);
    return -1;
  }
  char result = 0;
  ssize_t n;
  do {
    n = read(fds[0], &result, 1);
  } while (n < 0 && errno == EINTR);
  close(fds[0]);
  if (n != 1) {
    printf("FAIL orphan: C closed the pipe without a result (died?)\n");
    return -1;
  }
  if (result != '0') {
    printf("FAIL orphan: C reported a mismatch\n");
    return -1;
  }
  return Parallel('v', "orphan (top after C)");
}

int main(int argc, char** argv) {
  size_t size = 256u << 20;
  if (argc > 1 && (size = ParseSize(argv[1])) < kPage) {
    fprintf(stderr, "usage: %s [SIZE, e.g. 256M]\n", argv[0]);
    return 2;
  }
  npages = size / kPage;
  region = mmap(NULL, npages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  generation = malloc(npages * sizeof *generation);
  if (generation == NULL) {
    perror("malloc");
    return 1;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);

  SetAll(1);
  int failed = 0;
  if (Parallel('f', "fill") != 0) return 1;
  MaybeCorrupt("fill");
  if (Parallel('v', "fill") != 0) return 1;
  printf("ok fill (%zu MiB)\n", size >> 20);

  struct {
    const char* name;
    int (*run)(void);
  } phases[] = {{"sequential", PhaseSequential},
                {"concurrent", PhaseConcurrent},
                {"nested", PhaseNested},
                {"orphan", PhaseOrphan}};
  for (size_t i = 0; i < sizeof phases / sizeof phases[0]; ++i) {
    if (phases[i].run() == 0) {
      printf("ok %s\n", phases[i].name);
    } else {
      printf("FAIL %s\n", phases[i].name);
      failed = 1;
      break;  // later phases assume the parent's memory is right
    }
  }
  munmap(region, npages * kPage);
  free(generation);
  return failed;
}
