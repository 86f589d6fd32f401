// malloc_threads: the malloc heap under a limit, from 8 threads at once. Each thread runs ROUNDS
// rounds (argv[1], default 1500) of: malloc, calloc, realloc (grow or shrink) or free, with
// sizes log-uniform in 16 B .. 8 MiB (by octave) from a deterministic per-thread PRNG. Every byte
// of every buffer holds a value derived from (buffer tag, byte index); calloc'd memory must read
// zeros first; realloc must keep the prefix; every buffer is verified before it is freed, in random
// order. A thread keeps at most 40 MiB live (so ~320 MiB over all threads).
//
// Exit status: 0 when every check passed, 1 on a mismatch (the first one is printed).
//
// Test hook: FLTEST_CORRUPT=1 flips one byte of one live buffer in thread 0 once, mid-run.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mix.h"

enum { kThreads = 8, kMaxLive = 4096 };
#define kMinSize ((size_t)16)
#define kMaxSize ((size_t)8 << 20)
#define kLiveCap ((size_t)40 << 20)

static atomic_int failed;

typedef struct {
  uint8_t* p;
  size_t size;
  uint32_t tag;
} Buffer;

typedef struct {
  int index;
  unsigned rounds;
  uint64_t rng;
  uint32_t next_tag;
  Buffer live[kMaxLive];
  size_t nlive, live_bytes;
  unsigned long long ops[4];  // malloc, calloc, realloc, free
  size_t peak_live_bytes;
} Worker;

static uint64_t Next(Worker* w) {  // splitmix64
  w->rng += 0x9e3779b97f4a7c15ULL;
  return Mix(w->rng);
}

// Log-uniform in [kMinSize, kMaxSize) by octave (uniform within each), without libm.
static size_t RandomSize(Worker* w) {
  uint64_t r = Next(w);
  unsigned octave = (unsigned)(r % 19);  // 16 << 19 == kMaxSize
  size_t low = kMinSize << octave;
  return low + (size_t)((r >> 8) % low);
}

static uint64_t Word(uint32_t tag, size_t i) { return Mix(((uint64_t)tag << 32) ^ i) | 1; }

// Byte i of a buffer of `tag` is byte i % 8 (little endian) of Word(tag, i / 8).
static void FillRange(uint8_t* p, size_t from, size_t to, uint32_t tag) {
  size_t i = from;
  for (; i < to && (i % 8) != 0; ++i) p[i] = (uint8_t)(Word(tag, i / 8) >> (8 * (i % 8)));
  for (; i + 8 <= to; i += 8) {
    uint64_t v = Word(tag, i / 8);
    memcpy(p + i, &v, 8);
  }
  for (; i < to; ++i) p[i] = (uint8_t)(Word(tag, i / 8) >> (8 * (i % 8)));
}

static void Report(const Worker* w, const char* what, const Buffer* b, size_t offset,
                   unsigned expected, unsigned got) {
  if (atomic_exchange(&failed, 1) == 0) {
    printf("FAIL thread %d: %s: buffer tag 0x%08" PRIx32
           " size %zu at %p offset %zu: expected "
           "0x%02x got 0x%02x\n",
           w->index, what, b->tag, b->size, (void*)b->p, offset, expected, got);
    fflush(stdout);
  }
}

// Verifies bytes [0, len) of b against its tag; returns -1 (after reporting) on a mismatch.
static int VerifyPrefix(const Worker* w, const Buffer* b, size_t len, const char* what) {
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t got;
    memcpy(&got, b->p + i, 8);
    if (got != Word(b->tag, i / 8)) break;
  }
  for (; i < len; ++i) {
    unsigned want = (uint8_t)(Word(b->tag, i / 8) >> (8 * (i % 8)));
    if (b->p[i] != want) {
      Report(w, what, b, i, want, b->p[i]);
      return -1;
    }
  }
  return 0;
}

static void FreeAt(Worker* w, size_t k) {
  Buffer b = w->live[k];
  if (VerifyPrefix(w, &b, b.size, "before free") != 0) return;
  free(b.p);
  w->live_bytes -= b.size;
  w->live[k] = w->live[--w->nlive];
  w->ops[3]++;
}

// Frees random live buffers until `size` more bytes and one more buffer fit under the caps.
static void MakeRoom(Worker* w, size_t size) {
  while (!atomic_load_explicit(&failed, memory_order_relaxed) && w->nlive > 0 &&
         (w->live_bytes + size > kLiveCap || w->nlive >= kMaxLive)) {
    FreeAt(w, Next(w) % w->nlive);
  }
}

static int Track(Worker* w, uint8_t* p, size_t size, uint32_t tag) {
  if (p == NULL) {
    if (atomic_exchange(&failed, 1) == 0)
      printf("FAIL thread %d: out of memory (%zu)\n", w->index, size);
    return -1;
  }
  w->live[w->nlive++] = (Buffer){p, size, tag};
  w->live_bytes += size;
  if (w->live_bytes > w->peak_live_bytes) w->peak_live_bytes = w->live_bytes;
  return 0;
}

static void* Run(void* arg) {
  Worker* w = arg;
  const char* corrupt = getenv("FLTEST_CORRUPT");
  int corrupt_at =
      (w->index == 0 && corrupt != NULL && strcmp(corrupt, "1") == 0) ? (int)(w->rounds / 2) : -1;
  for (unsigned round = 0; round < w->rounds && !atomic_load(&failed); ++round) {
    unsigned op = (unsigned)(Next(w) % 100);
    if ((int)round == corrupt_at && w->nlive > 0) {
      Buffer* b = &w->live[w->nlive - 1];
      b->p[b->size / 2] ^= 0x20;
      fprintf(stderr,
              "malloc_threads: FLTEST_CORRUPT: flipped byte %zu of buffer 0x%08" PRIx32 "\n",
              b->size / 2, b->tag);
    }
    if (op < 55) {  // malloc
      size_t size = RandomSize(w);
      MakeRoom(w, size);
      uint8_t* p = malloc(size);
      uint32_t tag = w->next_tag++;
      if (Track(w, p, size, tag) != 0) break;
      FillRange(p, 0, size, tag);
      w->ops[0]++;
    } else if (op < 67) {  // calloc: zeros first
      size_t size = RandomSize(w);
      size_t elem = (size % 3 == 0) ? 24 : 8;
      size_t count = (size + elem - 1) / elem;
      size = count * elem;
      MakeRoom(w, size);
      uint8_t* p = calloc(count, elem);
      uint32_t tag = w->next_tag++;
      if (Track(w, p, size, tag) != 0) break;
      for (size_t i = 0; i < size; ++i) {
        if (p[i] != 0) {
          Report(w, "calloc memory not zero", &w->live[w->nlive - 1], i, 0, p[i]);
          break;
        }
      }
      FillRange(p, 0, size, tag);
      w->ops[1]++;
    } else if (op < 85 && w->nlive > 0) {  // realloc, grow or shrink: the prefix stays
      size_t k = Next(w) % w->nlive;
      size_t size = RandomSize(w);
      Buffer b = w->live[k];
      // Make room counting the old buffer out, without freeing the one being reallocated.
      w->live[k] = w->live[--w->nlive];
      w->live_bytes -= b.size;
      MakeRoom(w, size);
      uint8_t* p = realloc(b.p, size);
      if (p == NULL) {
        if (atomic_exchange(&failed, 1) == 0) printf("FAIL thread %d: realloc failed\n", w->index);
        break;
      }
      Buffer moved = {p, size, b.tag};
      size_t kept = b.size < size ? b.size : size;
      if (VerifyPrefix(w, &moved, kept,
                       size > b.size ? "realloc grow lost the prefix"
                                     : "realloc shrink lost the prefix") != 0)
        break;
      if (size > b.size) FillRange(p, b.size, size, b.tag);
      Track(w, p, size, b.tag);
      w->ops[2]++;
    } else if (w->nlive > 0) {  // free a random buffer
      FreeAt(w, Next(w) % w->nlive);
    }
  }
  while (w->nlive > 0 && !atomic_load(&failed)) FreeAt(w, Next(w) % w->nlive);
  return NULL;
}

int main(int argc, char** argv) {
  unsigned rounds = 1500;
  if (argc > 1) {
    char* end;
    unsigned long v = strtoul(argv[1], &end, 10);
    if (*end != '\0' || v == 0 || v > (1u << 23)) {
      fprintf(stderr, "usage: %s [ROUNDS]\n", argv[0]);
      return 2;
    }
    rounds = (unsigned)v;
  }
  static Worker workers[kThreads];
  pthread_t threads[kThreads];
  for (int t = 0; t < kThreads; ++t) {
    workers[t] = (Worker){.index = t,
                          .rounds = rounds,
                          .rng = 0x1234567ULL * (uint64_t)(t + 1),
                          .next_tag = (uint32_t)t << 24};
    if (pthread_create(&threads[t], NULL, Run, &workers[t]) != 0) {
      perror("pthread_create");
      return 1;
    }
  }
  size_t peak = 0;
  unsigned long long ops[4] = {0};
  for (int t = 0; t < kThreads; ++t) {
    pthread_join(threads[t], NULL);
    peak += workers[t].peak_live_bytes;
    for (int i = 0; i < 4; ++i) ops[i] += workers[t].ops[i];
  }
  if (atomic_load(&failed)) return 1;
  printf(
      "ok %u rounds x %d threads: %llu malloc, %llu calloc, %llu realloc, %llu free; "
      "sum of per-thread live peaks %zu MiB\n",
      rounds, kThreads, ops[0], ops[1], ops[2], ops[3], peak >> 20);
  return 0;
}
