// swap_faults: the workload of the swap fault-injection test (run_fault_injection_tests.sh). A
// private anonymous region of SIZE bytes (argv[1], with an optional K/M/G suffix) holds in every
// 8-byte word a value derived from (page index, word index, generation); THREADS threads
// (argv[2]) each own an interleaved share of the pages.
//
// Phases:
//   0. only with START (argv[4]): print "mapped pid PID" and wait until the file START exists;
//   1. fill every page with generation 1 and verify it; print "filled pid PID" and wait until the
//      file GO (argv[3]) exists: the test breaks the swap path meanwhile;
//   2. verify generation 1, then write generation 2 and verify it (the program goes on working
//      after the fault), touching every page.
// A page whose access raises SIGBUS is lost: it is skipped from then on and reported as
// "lost-page 0xADDRESS" (the address faultline logs for a page it poisons). Any other difference
// is a wrong byte, reported as "WRONG page P offset O expected E got G".
// Last line: "lost L wrong W". Exit status: 0 when W == 0 (lost pages are the test's to judge),
// 1 otherwise, 2 on bad usage.
//
// C11 + pthreads, no other dependency.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mix.h"

enum { kPage = 4096, kWords = kPage / 8, kMaxThreads = 64 };

static uint8_t* region;
static size_t npages;
static unsigned nthreads;
static uint8_t* lost;  // lost[p]: page p raised SIGBUS; written by its owning thread only

static __thread sigjmp_buf on_sigbus;
static __thread volatile sig_atomic_t armed;

static uint64_t Word(size_t page, size_t word, uint32_t gen) {
  return Mix(((uint64_t)gen << 40) ^ ((uint64_t)page * kWords + word));
}

static void OnSigbus(int sig, siginfo_t* info, void* context) {
  (void)info;
  (void)context;
  if (!armed) {
    signal(sig, SIG_DFL);  // not an access this program expects to fail: die of it
    raise(sig);
    return;
  }
  siglongjmp(on_sigbus, 1);
}

typedef struct {
  unsigned id;
  uint32_t gen;
  int write;  // 1: fill with gen, then verify; 0: verify only
  uint64_t wrong;
} Task;

static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;

// Fills (when asked) and verifies page p; returns 0 when it verified, 1 when a byte was wrong.
// Marks the page lost when an access raised SIGBUS.
static int DoPage(size_t p, uint32_t gen, int write) {
  uint64_t* w = (uint64_t*)(region + p * kPage);
  if (sigsetjmp(on_sigbus, 1) != 0) {
    armed = 0;
    lost[p] = 1;
    return 0;
  }
  armed = 1;
  if (write) {
    for (size_t i = 0; i < kWords; ++i) w[i] = Word(p, i, gen);
  }
  for (size_t i = 0; i < kWords; ++i) {
    uint64_t want = Word(p, i, gen);
    uint64_t got = w[i];
    if (got != want) {
      armed = 0;
      pthread_mutex_lock(&print_lock);
      printf("WRONG page %zu offset %zu expected %016" PRIx64 " got %016" PRIx64 "\n", p, i * 8,
             want, got);
      pthread_mutex_unlock(&print_lock);
      return 1;
    }
  }
  armed = 0;
  return 0;
}

static void* Run(void* arg) {
  Task* t = arg;
  for (size_t p = t->id; p < npages; p += nthreads) {
    if (lost[p]) continue;
    t->wrong += DoPage(p, t->gen, t->write);
  }
  return NULL;
}

// One pass over every page by all threads; returns the number of wrong pages.
static uint64_t Pass(uint32_t gen, int write) {
  pthread_t threads[kMaxThreads];
  Task tasks[kMaxThreads];
  for (unsigned i = 0; i < nthreads; ++i) {
    tasks[i] = (Task){i, gen, write, 0};
    if (pthread_create(&threads[i], NULL, Run, &tasks[i]) != 0) {
      perror("pthread_create");
      exit(2);
    }
  }
  uint64_t wrong = 0;
  for (unsigned i = 0; i < nthreads; ++i) {
    pthread_join(threads[i], NULL);
    wrong += tasks[i].wrong;
  }
  return wrong;
}

static void WaitFor(const char* path) {
  struct stat st;
  const struct timespec tick = {0, 10 * 1000 * 1000};
  while (stat(path, &st) != 0) nanosleep(&tick, NULL);
}

static size_t ParseSize(const char* s) {
  char* end;
  unsigned long long n = strtoull(s, &end, 10);
  switch (*end) {
    case 'K':
      n <<= 10;
      break;
    case 'M':
      n <<= 20;
      break;
    case 'G':
      n <<= 30;
      break;
    case '\0':
      break;
    default:
      return 0;
  }
  return (size_t)n;
}

int main(int argc, char** argv) {
  if (argc != 4 && argc != 5) {
    fprintf(stderr, "usage: %s SIZE THREADS GO_FILE [START_FILE]\n", argv[0]);
    return 2;
  }
  size_t size = ParseSize(argv[1]) / kPage * kPage;
  nthreads = (unsigned)atoi(argv[2]);
  if (size == 0 || nthreads == 0 || nthreads > kMaxThreads) {
    fprintf(stderr, "%s: bad SIZE or THREADS (1..%d)\n", argv[0], kMaxThreads);
    return 2;
  }
  npages = size / kPage;
  region = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  lost = calloc(npages, 1);
  if (region == MAP_FAILED || lost == NULL) {
    perror("memory");
    return 2;
  }
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_sigaction = OnSigbus;
  action.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigaction(SIGBUS, &action, NULL);

  if (argc == 5) {
    printf("mapped pid %d\n", (int)getpid());
    fflush(stdout);
    WaitFor(argv[4]);
  }
  uint64_t wrong = Pass(1, 1);
  printf("filled pid %d\n", (int)getpid());
  fflush(stdout);
  WaitFor(argv[3]);

  wrong += Pass(1, 0);
  wrong += Pass(2, 1);
  size_t lost_pages = 0;
  for (size_t p = 0; p < npages; ++p) {
    if (!lost[p]) continue;
    ++lost_pages;
    printf("lost-page %p\n", (void*)(region + p * kPage));
  }
  printf("lost %zu wrong %" PRIu64 "\n", lost_pages, wrong);
  return wrong == 0 ? 0 : 1;
}
