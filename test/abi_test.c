/* The ABI of faultline.h, frozen: the size and every offset of the public structs (as libfuse's
 * test_abi.c does), and fl_get_stats() filling exactly the size its caller passes. A change here
 * breaks programs built against an earlier header: append fields to fl_stats (and add their
 * offsets below), take fl_config's reserved space, never move a field. C only, linked against
 * libfaultline.so as a user would. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faultline/faultline.h"

#if UINTPTR_MAX != 0xffffffffffffffffu
#error "the offsets below are those of LP64 targets"
#endif

#define FROZEN(type, field, offset) \
  _Static_assert(offsetof(type, field) == (offset), #type "." #field " moved")

_Static_assert(sizeof(fl_config) == 72, "fl_config's size is frozen");
FROZEN(fl_config, memory_limit, 0);
FROZEN(fl_config, swap_path, 8);
FROZEN(fl_config, max_swap, 16);
FROZEN(fl_config, fault_threads, 24);
FROZEN(fl_config, evict_batch_pages, 28);
FROZEN(fl_config, fault_around_pages, 32);
FROZEN(fl_config, spin_us, 36);
FROZEN(fl_config, log_level, 40);
FROZEN(fl_config, readahead_pages, 44);
FROZEN(fl_config, max_pinned_pages, 48);
FROZEN(fl_config, reserved, 52);

_Static_assert(FL_STATS_SIZE_V0_1 == 312, "the size of fl_stats 0.1 is history");
_Static_assert(sizeof(fl_stats) == 312, "fl_stats grew: add the new fields' offsets here");
FROZEN(fl_stats, page_size, 0);
FROZEN(fl_stats, memory_limit, 8);
FROZEN(fl_stats, regions, 16);
FROZEN(fl_stats, managed_pages, 24);
FROZEN(fl_stats, resident_pages, 32);
FROZEN(fl_stats, swapped_pages, 40);
FROZEN(fl_stats, empty_pages, 48);
FROZEN(fl_stats, poisoned_pages, 56);
FROZEN(fl_stats, faults_zero_fill, 64);
FROZEN(fl_stats, faults_swap_in, 72);
FROZEN(fl_stats, faults_write_protect, 80);
FROZEN(fl_stats, faults_in_flight_rescue, 88);
FROZEN(fl_stats, faults_self_paged, 96);
FROZEN(fl_stats, pages_fault_around, 104);
FROZEN(fl_stats, pages_readahead, 112);
FROZEN(fl_stats, evictions, 120);
FROZEN(fl_stats, evictions_clean, 128);
FROZEN(fl_stats, evictions_zero, 136);
FROZEN(fl_stats, direct_reclaims, 144);
FROZEN(fl_stats, bytes_read, 152);
FROZEN(fl_stats, bytes_written, 160);
FROZEN(fl_stats, swap_slots_used, 168);
FROZEN(fl_stats, swap_slots_total, 176);
FROZEN(fl_stats, swap_full_events, 184);
FROZEN(fl_stats, limit_overshoot_pages, 192);
FROZEN(fl_stats, io_errors, 200);
FROZEN(fl_stats, checksum_errors, 208);
FROZEN(fl_stats, fault_latency_p50_ns, 216);
FROZEN(fl_stats, fault_latency_p99_ns, 224);
FROZEN(fl_stats, fault_latency_max_ns, 232);
FROZEN(fl_stats, peak_resident_pages, 240);
FROZEN(fl_stats, peak_managed_pages, 248);
FROZEN(fl_stats, regions_adopted, 256);
FROZEN(fl_stats, forks, 264);
FROZEN(fl_stats, pinned_pages, 272);
FROZEN(fl_stats, pages_prefetched, 280);
FROZEN(fl_stats, pages_freed, 288);
FROZEN(fl_stats, snapshots, 296);
FROZEN(fl_stats, snapshot_pages_copied, 304);

#define CHECK(cond)                                                                            \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      fprintf(stderr, "%s:%d: CHECK failed: %s (last error: %s)\n", __FILE__, __LINE__, #cond, \
              fl_last_error());                                                                \
      return 1;                                                                                \
    }                                                                                          \
  } while (0)

enum { kSentinel = 0xa5, kSlack = 64 };

/* A buffer larger than any fl_stats here, every byte kSentinel; fl_stats-aligned. */
static union {
  fl_stats stats;
  unsigned char bytes[sizeof(fl_stats) + kSlack];
} buffer;

static void Poison(void) { memset(buffer.bytes, kSentinel, sizeof(buffer.bytes)); }

/* Whether bytes [from, to) of the buffer are all `value`. */
static int All(size_t from, size_t to, unsigned char value) {
  for (size_t i = from; i < to; ++i) {
    if (buffer.bytes[i] != value) return 0;
  }
  return 1;
}

int main(void) {
  /* Sizes that no version of fl_stats has are refused before anything is written. */
  Poison();
  CHECK(fl_get_stats_sized(&buffer.stats, 8) == -EINVAL);
  CHECK(fl_get_stats_sized(&buffer.stats, FL_STATS_SIZE_V0_1 + 4) == -EINVAL);
  CHECK(fl_get_stats_sized(NULL, sizeof(fl_stats)) == -EINVAL);
  CHECK(All(0, sizeof(buffer.bytes), kSentinel));
  CHECK(fl_get_stats(&buffer.stats) == -ENXIO); /* no runtime yet */

  fl_config config;
  fl_config_init(&config);
  config.memory_limit = 8u << 20;
  config.swap_path = "/var/tmp";
  int rc = fl_init(&config);
  if (rc == -EPERM) {
    const char* ci = getenv("CI");
    int in_ci = ci != NULL && strcmp(ci, "true") == 0;
    printf("%s: %s\n", in_ci ? "FAIL (CI=true, no userfaultfd)" : "SKIP", fl_last_error());
    return in_ci ? 1 : 77;
  }
  CHECK(rc == 0);
  void* region = NULL;
  CHECK(fl_map(1u << 20, &region) == 0);
  memset(region, 1, 1u << 20);

  /* This header's callers: exactly sizeof(fl_stats). */
  Poison();
  CHECK(fl_get_stats(&buffer.stats) == 0);
  CHECK(buffer.stats.page_size == 4096 && buffer.stats.regions == 1);
  CHECK(buffer.stats.managed_pages == 256);
  CHECK(All(sizeof(fl_stats), sizeof(buffer.bytes), kSentinel));

  /* Programs built against 0.1 call the function, not the macro: FL_STATS_SIZE_V0_1 bytes. */
  Poison();
  CHECK((fl_get_stats)(&buffer.stats) == 0);
  CHECK(buffer.stats.page_size == 4096 && buffer.stats.managed_pages == 256);
  CHECK(All(FL_STATS_SIZE_V0_1, sizeof(buffer.bytes), kSentinel));

  /* A caller built against a newer header: the fields this library does not have read 0. */
  Poison();
  CHECK(fl_get_stats_sized(&buffer.stats, sizeof(buffer.bytes)) == 0);
  CHECK(buffer.stats.page_size == 4096 && buffer.stats.managed_pages == 256);
  CHECK(All(sizeof(fl_stats), sizeof(buffer.bytes), 0));

  CHECK(fl_unmap(region, 1u << 20) == 0);
  CHECK(fl_shutdown() == 0);
  printf("PASS: fl_config %zu B, fl_stats %zu B, offsets frozen\n", sizeof(fl_config),
         sizeof(fl_stats));
  return 0;
}
