#include "core/runtime.h"

#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <new>
#include <string>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "kernel/uffd.h"
#include "kernel/uffd_abi.h"
#include "util/log.h"
#include "util/raw_memory.h"
#include "util/status.h"

namespace faultline {
namespace {

constexpr uint32_t kMaxPagesPerOperation = 512;
constexpr uint32_t kMaxFaultThreads = 64;
constexpr uint64_t kMinLimitBytes = 64 * 1024;
constexpr unsigned kRingEntries = 256;

absl::Status Invalid(absl::string_view what) { return ErrnoError(EINVAL, "fl_config", what); }

// Fills in defaults and rejects what cannot work, before anything is created.
absl::StatusOr<fl_config> Normalize(fl_config c) {
  if (c.memory_limit == 0) return Invalid("memory_limit must be set (bytes, > 0)");
  if (c.memory_limit < kMinLimitBytes) {
    return Invalid(absl::StrFormat("memory_limit %u is below the minimum of %u bytes",
                                   c.memory_limit, kMinLimitBytes));
  }
  if (c.fault_threads == 0) c.fault_threads = 1;
  if (c.fault_threads > kMaxFaultThreads) {
    return Invalid(
        absl::StrFormat("fault_threads %u is above %u", c.fault_threads, kMaxFaultThreads));
  }
  if (c.evict_batch_pages == 0) c.evict_batch_pages = 64;
  // Zero fill and readahead have separate windows: a zero-fill window costs no buffer, while
  // readahead needs read buffers of its size (bench/README.md, "fault_around_pages").
  if (c.fault_around_pages == 0) c.fault_around_pages = 256;
  if (c.readahead_pages == 0) c.readahead_pages = 64;
  if (c.evict_batch_pages > kMaxPagesPerOperation || c.fault_around_pages > kMaxPagesPerOperation ||
      c.readahead_pages > kMaxPagesPerOperation) {
    return Invalid(
        absl::StrFormat("evict_batch_pages, fault_around_pages and readahead_pages must be <= %u",
                        kMaxPagesPerOperation));
  }
  uint64_t limit_pages = c.memory_limit / kPageSize;
  if (c.max_pinned_pages == 0) c.max_pinned_pages = static_cast<uint32_t>(limit_pages / 2);
  // A batch never takes more than a quarter of the limit, so small limits still work.
  c.evict_batch_pages = static_cast<uint32_t>(
      std::max<uint64_t>(1, std::min<uint64_t>(c.evict_batch_pages, limit_pages / 4)));
  if (c.spin_us == 0) c.spin_us = 200;
  if (c.spin_us < -1) return Invalid("spin_us must be >= -1");
  if (c.log_level < -1 || c.log_level > 6) return Invalid("log_level must be -1 or 0..6");
  if (c.max_swap != 0 && c.max_swap < kPageSize) {
    return Invalid("max_swap must hold at least one 4096-byte page");
  }
  return c;
}

std::string SwapPath(const fl_config& c) {
  if (c.swap_path != nullptr) return c.swap_path;
  const char* tmpdir = std::getenv("TMPDIR");
  return tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/var/tmp";
}

}  // namespace

absl::StatusOr<std::unique_ptr<Runtime>> Runtime::Create(const fl_config& config) {
  if (sysconf(_SC_PAGESIZE) != static_cast<long>(kPageSize)) {
    return ErrnoError(ENOTSUP, "faultline", "only 4096-byte pages are supported");
  }
  absl::StatusOr<fl_config> normalized = Normalize(config);
  if (!normalized.ok()) return normalized.status();
  if (!SetLogLevel(normalized->log_level)) {
    return ErrnoError(EINVAL, "FAULTLINE_LOG",
                      "must be 0..6 or trace, debug, info, warn, error, critical, off");
  }
  std::unique_ptr<Runtime> runtime(new Runtime());
  absl::Status status;
  try {
    status = runtime->Start(*normalized);
  } catch (const std::bad_alloc&) {
    status = ErrnoError(ENOMEM, "starting the runtime");
  } catch (const std::system_error& e) {
    status = ErrnoError(e.code().value(), "starting the runtime's threads");
  }
  if (!status.ok()) return status;
  return runtime;
}

absl::Status Runtime::Start(const fl_config& c) {
  config_ = c;
  // THREAD_ID: each fault names its thread, so that a library thread's fault is caught
  // (core/threads.h).
  absl::StatusOr<int> uffd =
      uffd::Open(UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_POISON | UFFD_FEATURE_THREAD_ID);
  if (!uffd.ok()) return uffd.status();
  uffd_ = *uffd;
  absl::StatusOr<int> staging_uffd = uffd::Open(UFFD_FEATURE_MOVE);
  if (!staging_uffd.ok()) return staging_uffd.status();
  staging_uffd_ = *staging_uffd;
  absl::StatusOr<int> self_paging_uffd =
      uffd::Open(UFFD_FEATURE_SIGBUS | UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_POISON);
  if (!self_paging_uffd.ok()) return self_paging_uffd.status();
  self_paging_uffd_ = *self_paging_uffd;
  stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  evictor_wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  mailbox_wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0 || evictor_wake_fd_ < 0 || mailbox_wake_fd_ < 0) {
    return ErrnoError(errno, "eventfd");
  }
  mailbox_ = std::make_unique<FaultMailbox>(mailbox_wake_fd_);

  absl::StatusOr<std::unique_ptr<SwapFile>> swap =
      SwapFile::Open(SwapPath(c), c.max_swap, kPageSize);
  if (!swap.ok()) return swap.status();
  swap_ = std::move(*swap);
  uint32_t streams = c.fault_threads + 1;
  slots_ = std::make_unique<SwapSlotAllocator>(swap_->slot_count(), streams);

  // Zero fill copies from here: a read-only anonymous mapping whose pages all map the kernel's
  // shared zero page, so the source of every copy stays in the CPU cache.
  zero_source_bytes_ = size_t{c.fault_around_pages} << kPageShift;
  zero_source_ =
      RawMmap(nullptr, zero_source_bytes_, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (zero_source_ == MAP_FAILED) {
    zero_source_ = nullptr;
    return ErrnoError(errno, "mmap of the zero-fill source");
  }
  for (size_t offset = 0; offset < zero_source_bytes_; offset += kPageSize) {
    (void)*static_cast<volatile const char*>(static_cast<char*>(zero_source_) + offset);
  }

  absl::StatusOr<std::unique_ptr<StagingArea>> evict_staging =
      StagingArea::Create(StagingArea::Kind::kEvictionTarget, 1, 8 + 2 * c.fault_threads,
                          c.evict_batch_pages, staging_uffd_);
  if (!evict_staging.ok()) return evict_staging.status();
  evict_staging_ = std::move(*evict_staging);
  // 8 read buffers of its own for each thread with a ring (`streams`: the fault handlers and the
  // evictor, which reads for MADV_WILLNEED): a thread out of buffers waits only for its own reads.
  absl::StatusOr<std::unique_ptr<StagingArea>> read_staging =
      StagingArea::Create(StagingArea::Kind::kReadBuffer, streams, 8, c.readahead_pages, -1);
  if (!read_staging.ok()) return read_staging.status();
  read_staging_ = std::move(*read_staging);

  PagerConfig pager_config{c.memory_limit / kPageSize, c.evict_batch_pages, c.fault_around_pages,
                           c.readahead_pages};
  PagerResources resources{uffd_,
                           staging_uffd_,
                           swap_.get(),
                           slots_.get(),
                           &registry_,
                           &policy_,
                           &counters_,
                           &stats_,
                           evict_staging_.get(),
                           read_staging_.get(),
                           static_cast<const char*>(zero_source_),
                           evictor_wake_fd_};
  pager_ = std::make_unique<Pager>(pager_config, resources);

  int64_t spin_ns = c.spin_us < 0 ? 0 : int64_t{c.spin_us} * 1000;
  for (uint32_t i = 0; i < c.fault_threads; ++i) {
    absl::StatusOr<std::unique_ptr<IoRing>> ring = IoRing::Create(kRingEntries);
    if (!ring.ok()) return ring.status();
    handlers_.push_back(std::make_unique<FaultHandler>(
        pager_.get(), &registry_, uffd_, mailbox_.get(), stop_fd_, spin_ns, std::move(*ring), i));
    handlers_.back()->Start(static_cast<int>(i));
  }
  absl::StatusOr<std::unique_ptr<IoRing>> ring = IoRing::Create(kRingEntries);
  if (!ring.ok()) return ring.status();
  evictor_ = std::make_unique<Evictor>(pager_.get(), &registry_, &counters_, evictor_wake_fd_,
                                       std::move(*ring), c.fault_threads, &hints_);
  evictor_->Start();
  int fork_wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fork_wake_fd < 0) return ErrnoError(errno, "eventfd");
  fork_holds_ = std::make_unique<ForkHolds>(slots_.get(), fork_wake_fd);
  Log().info("runtime started: limit {} MiB, swap {} (up to {} MiB), {} fault thread(s)",
             c.memory_limit >> 20, swap_->description(), (swap_->slot_count() * kPageSize) >> 20,
             c.fault_threads);
  return absl::OkStatus();
}

Runtime::~Runtime() {
  RemoveSigbusHandler();
  fork_holds_.reset();
  for (auto& handler : handlers_) handler->Stop();
  if (evictor_) evictor_->Stop();
  for (auto& region : registry_.RemoveAll()) {
    if (pager_) pager_->ReleaseRegionSlots(*region);
    void* base = reinterpret_cast<void*>(region->base);
    size_t bytes = region->bytes();
    uffd::Unregister(region->uffd, base, bytes);
    RawMunmap(base, bytes);
  }
  handlers_.clear();
  evictor_.reset();
  pager_.reset();
  read_staging_.reset();
  evict_staging_.reset();
  if (zero_source_ != nullptr) RawMunmap(zero_source_, zero_source_bytes_);
  for (int fd :
       {uffd_, staging_uffd_, self_paging_uffd_, stop_fd_, evictor_wake_fd_, mailbox_wake_fd_}) {
    if (fd >= 0) close(fd);
  }
}

absl::StatusOr<void*> Runtime::Map(size_t length, unsigned flags) {
  if (length == 0 || length % kPageSize != 0) {
    return ErrnoError(
        EINVAL, "fl_map",
        absl::StrFormat("length %u is not a positive multiple of %u", length, kPageSize));
  }
  if ((flags & ~unsigned{FL_MAP_SELF_PAGING}) != 0) {
    return ErrnoError(EINVAL, "fl_map", absl::StrFormat("unknown flags 0x%x", flags));
  }
  const bool self_paging = (flags & FL_MAP_SELF_PAGING) != 0;
  if (self_paging) {
    absl::Status installed = InstallSigbusHandler(this);
    if (!installed.ok()) return installed;
  }
  const int uffd = self_paging ? self_paging_uffd_ : uffd_;
  absl::StatusOr<void*> mapped = MapPrepared(uffd, length, PROT_READ | PROT_WRITE, "fl_map");
  if (!mapped.ok()) return mapped.status();
  void* address = *mapped;
  try {
    registry_.Add(reinterpret_cast<uintptr_t>(address), length / kPageSize, &counters_, uffd,
                  self_paging);
  } catch (const std::bad_alloc&) {
    uffd::Unregister(uffd, address, length);
    RawMunmap(address, length);
    return ErrnoError(ENOMEM, absl::StrFormat("fl_map of %u bytes: page table", length));
  }
  NoteManaged();
  return address;
}

absl::StatusOr<void*> Runtime::MapPrepared(int uffd, size_t length, int prot, const char* call) {
  void* address =
      RawMmap(nullptr, length, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (address == MAP_FAILED) {
    return ErrnoError(errno, absl::StrFormat("%s of %u bytes: mmap", call, length));
  }
  bool lock_failed = false;
  if (int rc = PrepareRange(uffd, address, length, &lock_failed); rc != 0) {
    RawMunmap(address, length);
    return lock_failed ? ErrnoError(-rc, absl::StrCat(call, ": mlock2(MLOCK_ONFAULT)"),
                                    "raise RLIMIT_MEMLOCK or grant CAP_IPC_LOCK")
                       : ErrnoError(-rc, absl::StrCat(call, ": registering with userfaultfd"));
  }
  return address;
}

int Runtime::PrepareRange(int uffd, void* address, size_t length, bool* lock_failed) noexcept {
  // 4 KiB pages: the page table, UFFDIO_MOVE and the swap slots all work page by page.
  RawMadvise(address, length, MADV_NOHUGEPAGE);
  // faultline is this memory's pager: the kernel must not reclaim it behind faultline's back.
  // Kernel reclaim of region pages interleaved with UFFDIO_MOVE lost pages (they moved out
  // reading as zeros) when the process ran in a memory cgroup with kernel swap. Locked on fault,
  // pages sit on the unevictable list; only resident pages count against RLIMIT_MEMLOCK.
  if (RawMlock2(address, length, MLOCK_ONFAULT) != 0) {
    *lock_failed = true;
    return -errno;
  }
  int rc =
      uffd::Register(uffd, address, length, UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP);
  if (rc != 0) RawMunlock(address, length);
  return rc;
}

absl::Status Runtime::Unmap(void* address, size_t length) {
  uintptr_t base = reinterpret_cast<uintptr_t>(address);
  if (base % kPageSize != 0 || length == 0 || length % kPageSize != 0) {
    return ErrnoError(EINVAL, "fl_unmap", "address and length must be page-aligned, length > 0");
  }
  std::unique_ptr<Region> region;
  {
    RegionRegistry::Writer writer(registry_);
    Region* found = writer.FirstOverlap(base, base + 1);
    if (found != nullptr && found->base == base && found->bytes() == length && !found->read_only) {
      pager_->DetachSnapshots(writer, *found);  // snapshots of it keep their bytes
      region = writer.Take(found);
    }
  }
  if (region == nullptr) {  // the message is made outside the lock: it allocates
    return ErrnoError(
        EINVAL, "fl_unmap",
        absl::StrFormat("[%p, +%u) is not a region returned by fl_map", address, length));
  }
  pager_->ReleaseRegionSlots(*region);
  DropPins(*region, 0, region->pages.size());
  uffd::Unregister(region->uffd, address, length);
  RawMunmap(address, length);
  if (region->backing != nullptr) {
    region.reset();
    CloseUnusedSnapshotFiles();
  }
  return absl::OkStatus();
}

void Runtime::GetStats(fl_stats* s) const {
  GetCounters(s);
  s->regions = registry_.count();
  s->swap_slots_used = slots_->used();
}

void Runtime::GetCounters(fl_stats* s) const noexcept {
  *s = fl_stats{};
  s->page_size = kPageSize;
  s->memory_limit = config_.memory_limit;
  auto pages = [&](PageState state) {
    return static_cast<uint64_t>(std::max<int64_t>(0, counters_.Get(state)));
  };
  s->resident_pages = pages(PageState::kResident) + pages(PageState::kLoading);
  s->swapped_pages = pages(PageState::kSwapped) + pages(PageState::kEvicting);
  s->empty_pages = pages(PageState::kEmpty);
  s->poisoned_pages = pages(PageState::kPoisoned);
  s->managed_pages = s->resident_pages + s->swapped_pages + s->empty_pages + s->poisoned_pages;
  s->faults_zero_fill = stats_.faults_zero_fill.Get();
  s->faults_swap_in = stats_.faults_swap_in.Get();
  s->faults_write_protect = stats_.faults_write_protect.Get();
  s->faults_in_flight_rescue = stats_.faults_in_flight_rescue.Get();
  s->faults_self_paged = stats_.faults_self_paged.Get();
  s->pages_fault_around = stats_.pages_fault_around.Get();
  s->pages_readahead = stats_.pages_readahead.Get();
  s->evictions = stats_.evictions.Get();
  s->evictions_clean = stats_.evictions_clean.Get();
  s->evictions_zero = stats_.evictions_zero.Get();
  s->direct_reclaims = stats_.direct_reclaims.Get();
  s->bytes_read = stats_.bytes_read.Get();
  s->bytes_written = stats_.bytes_written.Get();
  s->swap_slots_total = slots_->total();
  s->swap_full_events = stats_.swap_full_events.Get();
  s->limit_overshoot_pages = stats_.limit_overshoot_pages.Get();
  s->io_errors = stats_.io_errors.Get();
  s->checksum_errors = stats_.checksum_errors.Get();
  s->fault_latency_p50_ns = stats_.fault_latency.Percentile(0.50);
  s->fault_latency_p99_ns = stats_.fault_latency.Percentile(0.99);
  s->fault_latency_max_ns = stats_.fault_latency.max();
  s->peak_resident_pages = std::max(stats_.peak_charged_pages.Get(), s->resident_pages);
  s->peak_managed_pages = std::max(stats_.peak_managed_pages.Get(), s->managed_pages);
  s->regions_adopted = stats_.regions_adopted.Get();
  s->forks = stats_.forks.Get();
  s->pinned_pages = static_cast<uint64_t>(pinned_pages_.load(std::memory_order_relaxed));
  s->pages_prefetched = stats_.pages_prefetched.Get();
  s->pages_freed = stats_.pages_freed.Get();
  s->snapshots = static_cast<uint64_t>(snapshots_.load(std::memory_order_relaxed));
  s->snapshot_pages_copied = stats_.snapshot_pages_copied.Get();
}

bool Runtime::ResolveSigbus(uintptr_t address, bool write, uint64_t start_ns) noexcept {
  uint64_t forward_flags = 0;
  {
    RegionRegistry::Reader regions(registry_);
    Region* region = regions.Find(address);
    if (region == nullptr || !region->self_paging) return false;
    uint64_t index = (address - region->base) >> kPageShift;
    switch (
        pager_->ResolveOnFaultingThread(regions, *region, index, write, start_ns, &forward_flags)) {
      case Pager::SigbusAction::kResolved:
        return true;
      case Pager::SigbusAction::kPoisoned:
        return false;
      case Pager::SigbusAction::kForward:
        break;
    }
  }
  // Outside the registry lock: the fault-handler thread takes it, and fl_unmap may be waiting.
  mailbox_->Submit(address, forward_flags, start_ns);
  return true;
}

absl::StatusOr<Runtime::PageInfo> Runtime::InspectPage(const void* address) const {
  RegionRegistry::Reader regions(registry_);
  Region* region = regions.Find(reinterpret_cast<uintptr_t>(address));
  if (region == nullptr) return ErrnoError(EINVAL, "InspectPage", "address is not managed");
  PageWord word =
      region->pages.Peek((reinterpret_cast<uintptr_t>(address) - region->base) >> kPageShift);
  bool has_slot =
      word.state() == PageState::kSwapped || word.state() == PageState::kLoading || word.clean();
  return PageInfo{word.state(), has_slot ? word.payload() : kNoSlot};
}

}  // namespace faultline
