/*
 * faultline: a user-space virtual memory manager on the real MMU (userfaultfd).
 *
 * Conventions of this header:
 *  1. Every function that can fail returns 0 on success or a negative errno value (-EINVAL,
 * -ENOMEM,
 *     ...). fl_strerror() turns such a value into text; fl_last_error() gives the calling thread's
 *     last failure with its context ("swap directory /x: No such file or directory").
 *  2. One runtime per process. fl_init() starts it, fl_shutdown() stops it; a later fl_init() in
 *     the same process starts a fresh one. Every other call needs a running runtime (else -ENXIO).
 *  3. Regions belong to the runtime. The caller owns the addresses fl_map() hands out until it
 *     passes them to fl_unmap(); fl_shutdown() unmaps whatever is still mapped.
 *  4. Structs are plain data, filled by the caller (fl_config, after fl_config_init()) or by the
 *     library (fl_stats). A field never moves (test/abi_test.c freezes every size and offset).
 *     fl_config's size is frozen: new fields take its reserved space. fl_stats grows at its end
 *     only: fl_get_stats() passes the library the size of the caller's fl_stats, and the library
 *     fills exactly that much, so a program built against an older or newer header keeps working.
 *  5. No function throws, none blocks on a page fault of its own, all are thread-safe.
 */
#ifndef FAULTLINE_FAULTLINE_H_
#define FAULTLINE_FAULTLINE_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FL_VERSION_MAJOR 0
#define FL_VERSION_MINOR 2

/* Configuration of a runtime. Initialise with fl_config_init(), then set what you need. */
typedef struct fl_config {
  /* Most bytes of managed memory resident at once, over all regions. Required, > 0. */
  uint64_t memory_limit;
  /* Where swap goes: an existing directory (a temporary file is created in it and unlinked at
   * once, so nothing is left behind even on a crash) or the path of a new file (never an existing
   * one), likewise unlinked at once. NULL means $TMPDIR, else /var/tmp. It must be a disk file
   * system with O_DIRECT: tmpfs and ramfs are refused (swapping to RAM would gain nothing). */
  const char* swap_path;
  /* Largest size the swap file may reach, in bytes (it grows as used: sparse); it must fit in the
   * free space. 0 means 3/4 of the free space, at most 64 GiB. */
  uint64_t max_swap;
  /* Fault-handler threads; 0 means 1. */
  uint32_t fault_threads;
  /* Pages evicted per batch (one contiguous swap write); 0 means 64. */
  uint32_t evict_batch_pages;
  /* Most pages zero-filled by one fault (fault-around, grown along sequential first touches);
   * 0 means 256, 1 disables. */
  uint32_t fault_around_pages;
  /* Microseconds a fault-handler thread keeps polling after its last fault before it sleeps;
   * 0 means the default (200), a negative value (-1) never spins. */
  int32_t spin_us;
  /* Log level: 0 trace .. 6 off; -1 means the FAULTLINE_LOG environment variable, else 3 (warn). */
  int32_t log_level;
  /* Most pages read by one swap-in (readahead, grown along sequential faults over adjacent swap
   * slots); 0 means 64, 1 disables. Each fault thread, and the evictor, keeps 8 read buffers of
   * this size. */
  uint32_t readahead_pages;
  /* Most pages pinned at once (fl_pin, and mlock under LD_PRELOAD); 0 means half the limit. */
  uint32_t max_pinned_pages;
  uint32_t reserved[5];
} fl_config;

/* Fills *config with the defaults; memory_limit is left 0 and must be set. */
void fl_config_init(fl_config* config);

/* Starts the runtime. -EINVAL: bad config (limit 0 ...). -EALREADY: already running. -EPERM: no
 * userfaultfd permission (see README, "Permissions"). -ENOENT/-ENOTDIR/-EACCES/-EROFS: swap path
 * unusable. On failure nothing is left running and fl_init() may be called again. */
int fl_init(const fl_config* config);

/* Stops the runtime: unmaps every region, stops its threads, closes and removes the swap file. */
int fl_shutdown(void);

/* Maps a managed, anonymous, private, read-write region of `length` bytes (a multiple of the page
 * size, > 0) and stores its address in *addr. Its pages read as zero until written. */
int fl_map(size_t length, void** addr);

/* Flags of fl_map_flags(). */
/* Faults of the region are resolved on the faulting thread itself, in a SIGBUS handler that
 * faultline installs (a userfaultfd with UFFD_FEATURE_SIGBUS), instead of by a fault-handler
 * thread: an isolated first touch costs about a third as much. The price: a system call that
 * reads or writes a page of the region that is not resident fails with EFAULT instead of waiting,
 * so use it only for memory that the program touches with loads and stores. faultline chains to
 * the SIGBUS handler installed before its own; one installed later must chain to faultline's. */
#define FL_MAP_SELF_PAGING 0x1u

/* fl_map() with FL_MAP_* flags. -EINVAL for an unknown flag. */
int fl_map_flags(size_t length, unsigned flags, void** addr);

/* Unmaps a whole region given by its address and length, as returned by fl_map(); frees its
 * resident pages and swap slots. -EINVAL when (addr, length) is not exactly a region. */
int fl_unmap(void* addr, size_t length);

/* Pins [addr, addr + length) (page-aligned, inside regions): its pages are made resident now
 * (or, with FL_PIN_ONFAULT, when first touched) and are never evicted until unpinned or unmapped,
 * even when the process is over its limit. -ENOMEM, with nothing pinned, when the pages would
 * exceed fl_config.max_pinned_pages (or part of the range is not managed: -EINVAL). Pinning a
 * pinned page again is allowed and counts once. */
#define FL_PIN_ONFAULT 0x1u
int fl_pin(void* addr, size_t length, unsigned flags);
/* Makes [addr, addr + length) evictable again. -EINVAL when part of it is not managed. */
int fl_unpin(void* addr, size_t length);

/* Advice about how a page-aligned range of regions will be used (the values of the Linux
 * MADV_* constants, which LD_PRELOAD'ed madvise() maps onto this):
 *   FL_ADVICE_NORMAL      readahead on swap-in grows along sequential faults (the default)
 *   FL_ADVICE_RANDOM      no readahead
 *   FL_ADVICE_SEQUENTIAL  always the largest readahead
 *   FL_ADVICE_WILLNEED    start reading the swapped-out pages now (asynchronous)
 *   FL_ADVICE_DONTNEED    discard: the next access reads zeros, swap slots are freed
 *   FL_ADVICE_FREE        the pages may be dropped (read as zeros) when evicted, without being
 *                         written; until then they keep their contents; a write cancels it
 *   FL_ADVICE_COLD        evict these pages before any other
 *   FL_ADVICE_PAGEOUT     evict now (returns when their writes are done); contents are kept
 * The readahead advice applies to exactly the pages of the range; SEQUENTIAL also makes the
 * pages a scan has passed the first to be evicted. */
#define FL_ADVICE_NORMAL 0
#define FL_ADVICE_RANDOM 1
#define FL_ADVICE_SEQUENTIAL 2
#define FL_ADVICE_WILLNEED 3
#define FL_ADVICE_DONTNEED 4
#define FL_ADVICE_FREE 8
#define FL_ADVICE_COLD 20
#define FL_ADVICE_PAGEOUT 21
int fl_advise(void* addr, size_t length, int advice);
/* FL_ADVICE_WILLNEED, and with `wait` != 0 returns once the pages are in memory. */
int fl_prefetch(void* addr, size_t length, int wait);

/* A snapshot of the runtime's counters. Page counts are in pages of fl_stats.page_size. */
typedef struct fl_stats {
  uint64_t page_size;
  uint64_t memory_limit;
  uint64_t regions;
  uint64_t managed_pages;  /* pages of all mapped regions */
  uint64_t resident_pages; /* mapped in memory, including pages being loaded */
  uint64_t swapped_pages;  /* held only in the swap file, including pages being written */
  uint64_t empty_pages;    /* never touched (or dropped while all zero): read as zero */
  uint64_t poisoned_pages; /* unrecoverable (I/O error or checksum mismatch): SIGBUS on access */
  uint64_t faults_zero_fill;
  uint64_t faults_swap_in;
  uint64_t faults_write_protect;
  uint64_t faults_in_flight_rescue; /* faults served from a page being evicted */
  uint64_t faults_self_paged;       /* faults resolved on the faulting thread (SIGBUS) */
  uint64_t pages_fault_around;      /* extra pages zero-filled by fault-around */
  uint64_t pages_readahead;         /* extra pages read by swap readahead */
  uint64_t evictions;               /* pages taken out of memory */
  uint64_t evictions_clean;         /* ... of which dropped without I/O (valid slot) */
  uint64_t evictions_zero;          /* ... of which all zero (never written) */
  uint64_t direct_reclaims;         /* faults that had to reclaim before being served */
  uint64_t bytes_read;
  uint64_t bytes_written;
  uint64_t swap_slots_used;
  uint64_t swap_slots_total;
  uint64_t swap_full_events;      /* evictions refused because the swap file is full */
  uint64_t limit_overshoot_pages; /* most pages ever resident above the limit */
  uint64_t io_errors;
  uint64_t checksum_errors;
  uint64_t fault_latency_p50_ns; /* handler service time: message read to page mapped */
  uint64_t fault_latency_p99_ns;
  uint64_t fault_latency_max_ns;
  uint64_t peak_resident_pages; /* most pages ever resident (or being loaded) at once */
  uint64_t peak_managed_pages;  /* most pages ever managed at once */
  uint64_t regions_adopted;     /* mappings taken over from the program (LD_PRELOAD) */
  uint64_t forks;               /* fork()s of the process while it had managed memory */
  uint64_t pinned_pages;        /* pages pinned now (resident or to be, on first touch) */
  uint64_t pages_prefetched;    /* pages read ahead of use by FL_ADVICE_WILLNEED / fl_prefetch */
  uint64_t pages_freed;         /* FL_ADVICE_FREE'd pages dropped by eviction without I/O */
  uint64_t snapshots;           /* snapshots alive now */
  uint64_t snapshot_pages_copied; /* pages copied into snapshots (written after a snapshot) */
} fl_stats;

/* sizeof(fl_stats) in version 0.1: the smallest size fl_get_stats_sized() accepts. */
#define FL_STATS_SIZE_V0_1 312

/* Fills the first `size` bytes of *stats; `size` is sizeof(fl_stats) as the caller's header has
 * it (fl_get_stats() passes it). Fields past the library's own fl_stats read 0. -EINVAL when
 * `size` is below FL_STATS_SIZE_V0_1 or not a multiple of 8. */
int fl_get_stats_sized(fl_stats* stats, size_t size);
/* The function of this name (which programs built before 0.2 call) fills FL_STATS_SIZE_V0_1
 * bytes; the macro makes every newer caller pass its own size. */
int fl_get_stats(fl_stats* stats);
#define fl_get_stats(stats) fl_get_stats_sized((stats), sizeof(*(stats)))

/* Copy-on-write snapshots of managed memory, without fork().
 *
 * fl_snapshot_create: a snapshot of the page-aligned range [addr, addr + length), which must lie
 * in one managed region. It is the memory at the moment the call returns, for every thread:
 * while it runs, page faults of all threads wait (as they would on fork()'s page-table copy), and
 * a write to a page it has passed faults and waits, so no write is half in. Pages the swap file
 * holds are shared with the snapshot by reference; a page in memory is copied the first time it
 * is written afterwards (or when it is evicted, discarded or unmapped). The copies count against
 * the memory limit and are evicted to swap like any page. At most 64 snapshots whose pages still
 * wait for a copy exist at once (-ENOSPC beyond). -EINVAL for a range not in one region.
 *
 * fl_snapshot_data: the snapshot as a read-only mapping of its own (fl_snapshot_length bytes),
 * valid until fl_snapshot_release. A page that was lost (poisoned) raises SIGBUS there.
 * fl_snapshot_read: copies [offset, offset + length) of it into buf; -EIO (nothing copied past the
 * lost page) if a page was lost; does not bring swapped pages into memory.
 * fl_snapshot_save: writes the snapshot to the file `path` (streamed, with a checksum per page;
 * swapped pages are read from the swap file without being faulted in); the file appears only
 * when complete.
 * fl_snapshot_release: frees the snapshot; snapshots may be released in any order.
 * fl_snapshot_open: maps the snapshot file `path` as a new managed region (fl_unmap it when done)
 * whose pages are read from the file on first touch; a page whose checksum fails raises SIGBUS
 * (and is logged). A truncated or corrupt file header or page table fails here with -EINVAL. */
typedef struct fl_snapshot fl_snapshot;
int fl_snapshot_create(void* addr, size_t length, fl_snapshot** snapshot);
const void* fl_snapshot_data(const fl_snapshot* snapshot);
size_t fl_snapshot_length(const fl_snapshot* snapshot);
int fl_snapshot_read(const fl_snapshot* snapshot, size_t offset, void* buf, size_t length);
int fl_snapshot_save(const fl_snapshot* snapshot, const char* path);
int fl_snapshot_release(fl_snapshot* snapshot);
int fl_snapshot_open(const char* path, void** addr, size_t* length);

/* Text for a negative errno value returned by this API. Never NULL. */
const char* fl_strerror(int error);

/* The calling thread's last failure with its context, or "" when there was none. */
const char* fl_last_error(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* FAULTLINE_FAULTLINE_H_ */
