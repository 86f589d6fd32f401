// process_tree: a tree of processes under `faultline run`, for its per-process report. Every
// process that maps memory fills a private anonymous region of SIZE bytes (argv[2]; K/M/G
// suffix) with 2 threads, a pattern keyed by a seed of its own, and verifies every byte.
//
// `process_tree top SIZE` (what the test runs) starts, in this order, and waits for each:
//   fork       a forked child (no exec: it runs without a pager) that verifies the parent's region
//              (evicted pages included) and leaves with _exit(0)
//   worker x2  forked children that exec the program as `tree-worker` at once (two at a time)
//   spawned    a `tree-worker` started with posix_spawn (no fork image of its own)
//   chain      a forked child that execs `tree-chain`, which execs `tree-worker`: three images
//              of one pid
//   victim     a forked child that execs `tree-victim`, which maps and fills its region, then
//              kills itself with SIGKILL: it leaves no summary
// then verifies its own region once more. Names are symlinks to this program in a temporary
// directory, so that each image's command name says what it is; the directory is removed.
//
// Exit status: 0 when every process verified and ended as planned; 1 otherwise, with a line
// "FAIL ..." on stderr.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mix.h"

extern char** environ;

enum { kThreads = 2 };

static uint64_t* region;
static size_t words;
static uint64_t seed;
static char links[PATH_MAX];  // the directory of symlinks

static void Fail(const char* what) {
  fprintf(stderr, "FAIL %s (pid %d): %s\n", what, (int)getpid(), strerror(errno));
  exit(1);
}

static size_t ParseSize(const char* text) {
  char* end;
  unsigned long long n = strtoull(text, &end, 10);
  switch (*end) {
    case 'G':
      n <<= 10;  // fall through
    case 'M':
      n <<= 10;  // fall through
    case 'K':
      n <<= 10;
  }
  return (size_t)n;
}

typedef struct {
  int thread;
  int write;
  size_t bad;  // words that differ (verify)
} Part;

static void* Work(void* arg) {
  Part* part = arg;
  size_t first = words * part->thread / kThreads, end = words * (part->thread + 1) / kThreads;
  for (size_t i = first; i < end; ++i) {
    uint64_t want = Mix(seed * 0x100000000ULL + i);
    if (part->write) {
      region[i] = want;
    } else if (region[i] != want) {
      ++part->bad;
    }
  }
  return NULL;
}

// Fills (write) or verifies the region with kThreads threads; the number of wrong words.
static size_t Pass(int write) {
  pthread_t threads[kThreads];
  Part parts[kThreads];
  size_t bad = 0;
  for (int t = 0; t < kThreads; ++t) {
    parts[t] = (Part){t, write, 0};
    if (pthread_create(&threads[t], NULL, Work, &parts[t]) != 0) Fail("pthread_create");
  }
  for (int t = 0; t < kThreads; ++t) {
    pthread_join(threads[t], NULL);
    bad += parts[t].bad;
  }
  return bad;
}

static void MapAndFill(size_t size, uint64_t key) {
  words = size / 8;
  seed = key;
  region = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region == MAP_FAILED) Fail("mmap");
  Pass(1);
}

static void Verify(const char* who) {
  size_t bad = Pass(0);
  if (bad != 0) {
    fprintf(stderr, "FAIL %s (pid %d): %zu words differ\n", who, (int)getpid(), bad);
    exit(1);
  }
}

// The path of the symlink `name`.
static const char* Link(const char* name) {
  static char path[PATH_MAX + 32];
  snprintf(path, sizeof(path), "%s/%s", links, name);
  return path;
}

static pid_t ForkExec(const char* name, const char* size, const char* key) {
  pid_t pid = fork();
  if (pid < 0) Fail("fork");
  if (pid == 0) {
    const char* path = Link(name);
    execl(path, path, name, size, key, (char*)NULL);
    Fail("execl");
  }
  return pid;
}

// Waits for `pid`; it must exit 0, or with `want_signal` be killed by it.
static void Expect(pid_t pid, const char* what, int want_signal) {
  int status;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) Fail("waitpid");
  }
  int ok = want_signal != 0 ? WIFSIGNALED(status) && WTERMSIG(status) == want_signal
                            : WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!ok) {
    fprintf(stderr, "FAIL %s: status 0x%x\n", what, status);
    exit(1);
  }
}

static void MakeLinks(void) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n < 0) Fail("readlink /proc/self/exe");
  self[n] = '\0';
  const char* tmp = getenv("TMPDIR");
  snprintf(links, sizeof(links), "%s/process_tree.XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
  if (mkdtemp(links) == NULL) Fail("mkdtemp");
  const char* names[] = {"tree-worker", "tree-chain", "tree-victim"};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); ++i) {
    if (symlink(self, Link(names[i])) != 0) Fail("symlink");
  }
}

static void RemoveLinks(void) {
  const char* names[] = {"tree-worker", "tree-chain", "tree-victim"};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); ++i) unlink(Link(names[i]));
  rmdir(links);
}

static int Top(const char* size) {
  MakeLinks();
  MapAndFill(ParseSize(size), 1);
  Verify("top fill");

  pid_t pid = fork();
  if (pid < 0) Fail("fork");
  if (pid == 0) {
    Verify("forked child");
    _exit(0);
  }
  Expect(pid, "forked child", 0);

  pid_t a = ForkExec("tree-worker", size, "2"), b = ForkExec("tree-worker", size, "3");
  Expect(a, "worker 2", 0);
  Expect(b, "worker 3", 0);

  char* argv[] = {(char*)Link("tree-worker"), "tree-worker", (char*)size, "4", NULL};
  if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ) != 0) Fail("posix_spawn");
  Expect(pid, "spawned worker", 0);

  Expect(ForkExec("tree-chain", size, "5"), "chain", 0);
  Expect(ForkExec("tree-victim", size, "6"), "victim", SIGKILL);

  Verify("top at the end");
  RemoveLinks();
  printf("ok process_tree\n");
  return 0;
}

int main(int argc, char** argv) {
  // argv[1] is the role; an exec'd image's argv[0] is the symlink it was started from.
  if (argc != 3 && argc != 4) {
    fprintf(stderr, "usage: process_tree top SIZE\n");
    return 2;
  }
  const char* role = argv[1];
  if (strcmp(role, "top") == 0) return Top(argv[2]);
  if (argc != 4) return 2;
  if (strcmp(role, "tree-chain") == 0) {
    // Execs the worker beside the link it was started from.
    snprintf(links, sizeof(links), "%s", argv[0]);
    char* slash = strrchr(links, '/');
    if (slash == NULL) return 2;
    *slash = '\0';
    const char* path = Link("tree-worker");
    execl(path, path, "tree-worker", argv[2], argv[3], (char*)NULL);
    Fail("execl");
  }
  MapAndFill(ParseSize(argv[2]), strtoull(argv[3], NULL, 10));
  Verify(role);
  if (strcmp(role, "tree-victim") == 0) raise(SIGKILL);
  return 0;
}
