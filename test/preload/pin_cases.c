// pin_cases: the mlock family on memory that faultline manages, under a limit far below the
// memory in use, with a thread rewriting other memory meanwhile. Under faultline a lock is a pin:
// locked pages must stay resident (mincore) however much else is evicted, munlock lets them go,
// mlockall/munlockall work, and every byte is verified. Natively (no FAULTLINE_LIMIT in the
// environment) the same checks hold, since the kernel keeps locked pages resident too; only the
// pin budget check (mlock beyond half the limit fails with ENOMEM) is faultline's.
// Prints "ok <case>" or "FAIL <case>: ..."; exits nonzero on any failure.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MiB ((size_t)1 << 20)
#define PAGE 4096

static int failed;

// Page contents depend on the page's address and a tag, so any page can be checked on its own.
static uint64_t Word(const uint8_t* page, uint64_t tag, size_t i) {
  return (tag << 40) ^ ((uint64_t)(uintptr_t)page >> 12 << 12) ^ i;
}

static void Fill(uint8_t* base, size_t bytes, uint64_t tag) {
  for (size_t p = 0; p < bytes / PAGE; ++p) {
    uint64_t* w = (uint64_t*)(base + p * PAGE);
    for (size_t i = 0; i < PAGE / 8; ++i) w[i] = Word(base + p * PAGE, tag, i);
  }
}

static size_t Wrong(const uint8_t* base, size_t bytes, uint64_t tag) {
  size_t wrong = 0;
  for (size_t p = 0; p < bytes / PAGE; ++p) {
    const uint64_t* w = (const uint64_t*)(base + p * PAGE);
    for (size_t i = 0; i < PAGE / 8; ++i) {
      if (w[i] != Word(base + p * PAGE, tag, i)) {
        ++wrong;
        break;
      }
    }
  }
  return wrong;
}

// Pages of [base, base + bytes) not resident now.
static size_t NotResident(uint8_t* base, size_t bytes) {
  static unsigned char vec[64 * MiB / PAGE];
  if (mincore(base, bytes, vec) != 0) return bytes / PAGE;
  size_t missing = 0;
  for (size_t p = 0; p < bytes / PAGE; ++p) missing += !(vec[p] & 1);
  return missing;
}

static void Report(const char* name, const char* problem) {
  if (problem == NULL) {
    printf("ok %s\n", name);
  } else {
    printf("FAIL %s: %s\n", name, problem);
    failed = 1;
  }
}

typedef struct {
  uint8_t* region;
  size_t bytes;
  atomic_int stop;
} Pressure;

static void* Press(void* arg) {
  Pressure* p = arg;
  for (uint64_t round = 0; !atomic_load(&p->stop); ++round) Fill(p->region, p->bytes, 50 + round);
  return NULL;
}

static uint8_t* Map(size_t bytes) {
  void* m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    perror("mmap");
    exit(2);
  }
  return m;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const size_t bytes = 64 * MiB;
  const size_t locked = 4 * MiB;
  uint8_t* region = Map(bytes);
  Fill(region, bytes, 1);
  Pressure pressure = {.region = Map(64 * MiB), .bytes = 64 * MiB};
  pthread_t thread;
  pthread_create(&thread, NULL, Press, &pressure);

  // 1. mlock: the locked pages stay resident while everything else is rewritten.
  char problem[256];
  const char* why = NULL;
  if (mlock(region + 8 * MiB, locked) != 0) {
    snprintf(problem, sizeof problem, "mlock: %s", strerror(errno));
    why = problem;
  } else {
    size_t worst = 0;
    for (int round = 0; round < 4; ++round) {
      Fill(region + 16 * MiB, 48 * MiB, (uint64_t)(2 + round));
      size_t missing = NotResident(region + 8 * MiB, locked);
      if (missing > worst) worst = missing;
    }
    if (worst > 0) {
      snprintf(problem, sizeof problem, "%zu locked pages were not resident", worst);
      why = problem;
    } else if (Wrong(region + 8 * MiB, locked, 1) != 0) {
      why = "locked pages lost their bytes";
    }
  }
  Report("mlock_keeps_pages_resident", why);

  // 2. munlock: the pages may go again, and keep their bytes.
  why = NULL;
  if (munlock(region + 8 * MiB, locked) != 0) {
    why = "munlock failed";
  } else {
    Fill(region + 16 * MiB, 48 * MiB, 9);
    if (Wrong(region, 8 * MiB, 1) != 0 || Wrong(region + 8 * MiB, locked, 1) != 0) {
      why = "bytes changed after munlock";
    }
  }
  Report("munlock", why);

  // 3. Over faultline's pin budget (half the limit): ENOMEM and nothing locked.
  if (getenv("FAULTLINE_LIMIT") != NULL) {
    why = NULL;
    if (mlock(region, bytes) == 0) {
      why = "mlock of 64 MiB succeeded beyond the pin budget";
      munlock(region, bytes);
    } else if (errno != ENOMEM) {
      snprintf(problem, sizeof problem, "mlock beyond the budget: errno %d, not ENOMEM", errno);
      why = problem;
    }
    Report("mlock_beyond_budget", why);
  }

  // 4. mlock2(MLOCK_ONFAULT): locked when touched.
  why = NULL;
  if (mlock2(region + 32 * MiB, locked, MLOCK_ONFAULT) != 0) {
    why = "mlock2 failed";
  } else {
    Fill(region + 32 * MiB, locked, 10);
    Fill(region, 16 * MiB, 11);
    if (NotResident(region + 32 * MiB, locked) != 0) why = "touched MLOCK_ONFAULT pages left";
    if (munlock(region + 32 * MiB, locked) != 0) why = "munlock failed";
  }
  Report("mlock2_onfault", why);

  // 5. mlockall(MCL_FUTURE | MCL_ONFAULT): a new mapping is locked as it is touched; then
  //    munlockall.
  why = NULL;
  if (mlockall(MCL_FUTURE | MCL_ONFAULT) != 0) {
    snprintf(problem, sizeof problem, "mlockall: %s", strerror(errno));
    why = problem;
  } else {
    uint8_t* fresh = Map(locked);
    Fill(fresh, locked, 12);
    Fill(region, 16 * MiB, 13);
    if (NotResident(fresh, locked) != 0) why = "a mapping made after mlockall(MCL_FUTURE) left";
    if (munlockall() != 0) why = "munlockall failed";
    if (Wrong(fresh, locked, 12) != 0) why = "the new mapping's bytes are wrong";
    munmap(fresh, locked);
  }
  Report("mlockall_future_munlockall", why);

  // 6. Under faultline, mlockall(MCL_CURRENT) of more than the pin budget: ENOMEM.
  if (getenv("FAULTLINE_LIMIT") != NULL) {
    why = NULL;
    if (mlockall(MCL_CURRENT) == 0) {
      why = "mlockall(MCL_CURRENT) of 128 MiB succeeded beyond the pin budget";
      munlockall();
    } else if (errno != ENOMEM) {
      why = "mlockall beyond the budget did not fail with ENOMEM";
    }
    Report("mlockall_beyond_budget", why);
  }

  atomic_store(&pressure.stop, 1);
  pthread_join(thread, NULL);

  // 7. Under faultline, paging advice through madvise (with the pressure stopped, so that only
  //    the advice moves these pages): PAGEOUT takes pages out at once, WILLNEED brings them back
  //    without the program touching them.
  if (getenv("FAULTLINE_LIMIT") != NULL) {
    why = NULL;
    uint8_t* advised = region + 40 * MiB;
    if (madvise(advised, locked, MADV_PAGEOUT) != 0) {
      why = "madvise(MADV_PAGEOUT) failed";
    } else if (NotResident(advised, locked) < locked / PAGE / 2) {
      why = "MADV_PAGEOUT left most pages resident";
    } else if (posix_madvise(advised, locked, POSIX_MADV_WILLNEED) != 0) {
      why = "posix_madvise(POSIX_MADV_WILLNEED) failed";
    } else {
      for (int i = 0; i < 3000 && NotResident(advised, locked) > locked / PAGE / 2; ++i) {
        usleep(10000);  // up to 30 s: WILLNEED is asynchronous, and CI machines are loaded
      }
      if (NotResident(advised, locked) > locked / PAGE / 2) {
        why = "MADV_WILLNEED did not bring the pages back";
      } else if (Wrong(advised, locked, 9) != 0) {
        why = "advised pages lost their bytes";
      }
    }
    Report("pageout_willneed", why);
  }

  why = NULL;
  if (Wrong(region, 16 * MiB, 13) != 0 || Wrong(region + 16 * MiB, 16 * MiB, 9) != 0 ||
      Wrong(region + 32 * MiB, locked, 10) != 0 ||
      Wrong(region + 36 * MiB, 28 * MiB, 9) != 0) {
    why = "the region's bytes are wrong at the end";
  }
  Report("all_bytes", why);
  return failed;
}
