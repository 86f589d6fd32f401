#include "latency_modes.h"

#include <sys/mman.h>
#include <sys/resource.h>

#include <cstring>

#include "device_read.h"
#include "faultline/faultline.h"
#include "timed_touch.h"
#include "workloads.h"

namespace faultline_bench {

const LatencyModeInfo kLatencyModes[7] = {
    {LatencyMode::kKernelFirstTouch, "kernel-first-touch",
     "kernel: first store into private anonymous memory (4 KiB pages)"},
    {LatencyMode::kKernelSwapIn, "kernel-swap-in",
     "kernel: load of a page swapped out (memory cgroup + bench-owned swap file)"},
    {LatencyMode::kFaultlineZeroFill, "faultline-zero-fill",
     "faultline: first store, served by the fault-handler thread"},
    {LatencyMode::kFaultlineSelfPaging, "faultline-self-paging",
     "faultline: first store into a FL_MAP_SELF_PAGING region (the faulting thread serves it)"},
    {LatencyMode::kFaultlineSwapIn, "faultline-swap-in",
     "faultline: load of a page evicted by fl_advise(FL_ADVICE_PAGEOUT)"},
    {LatencyMode::kFaultlineWriteProtectCopy, "faultline-wp-copy",
     "faultline: first store after a snapshot (write-protect fault, page copied)"},
    {LatencyMode::kDeviceRead, "device-read",
     "the swap directory's device: O_DIRECT 4 KiB pread at queue depth 1"},
};

const LatencyModeInfo& InfoOf(LatencyMode mode) {
  for (const LatencyModeInfo& info : kLatencyModes) {
    if (info.mode == mode) return info;
  }
  return kLatencyModes[0];
}

namespace {

// Room above a swap-in region for what else its side keeps resident (the kernel's child: its
// stack, heap and page tables; the kernel's swap readahead), so that nothing is reclaimed while
// the re-touches are timed.
constexpr uint64_t kSwapInHeadroom = 64 * kMiB;
// The kernel child's limit while it pushes its swap cache out: below what the child needs, so
// that the kernel reclaims every page it can (even when the write then fails with EBUSY); the
// child's own pages fault back in before timing.
constexpr uint64_t kSqueezeLimit = 1 * kMiB;
constexpr int kSqueezeTries = 5;

void Finish(TimedTouches touches, LatencyRow* row) {
  row->sorted_ns = std::move(touches.samples_ns);
  row->summary = Summarize(&row->sorted_ns, touches.elapsed_ns);
}

// One store into every page of [base, base + bytes): content for the swap-in modes (a page never
// written would be evicted as a zero page, without I/O).
void StoreIntoEveryPage(char* base, size_t bytes) {
  for (size_t offset = 0; offset < bytes; offset += kPage) {
    *static_cast<volatile char*>(base + offset) = 1;
  }
}

bool KernelFirstTouch(uint32_t threads, const LatencySettings& settings, LatencyRow* row,
                      std::string* why) {
  AnonRegion region;
  if (!region.Open(settings.samples * kPage, why)) return false;
  Finish(TimeTouches(region.data(), ContiguousSlices(settings.samples, threads), Access::kStore),
         row);
  return true;
}

bool FaultlineZeroFill(uint32_t threads, bool self_paging, const LatencySettings& settings,
                       LatencyRow* row, std::string* why) {
  const size_t bytes = settings.samples * kPage;
  Knobs knobs;
  knobs.memory_limit = 2 * bytes;
  // One page per fault: every timed store is a fault of its own.
  knobs.fault_around_pages = 1;
  knobs.map_flags = self_paging ? FL_MAP_SELF_PAGING : 0;
  ManagedRegion region;
  if (!region.Open(knobs, settings.swap_dir, bytes, why)) return false;
  Finish(TimeTouches(region.data(), ContiguousSlices(settings.samples, threads), Access::kStore),
         row);
  fl_stats stats = region.Stats();
  row->handler_p50_ns = stats.fault_latency_p50_ns;
  row->handler_p99_ns = stats.fault_latency_p99_ns;
  return true;
}

bool FaultlineSwapIn(uint32_t threads, const LatencySettings& settings, LatencyRow* row,
                     std::string* why) {
  const size_t bytes = settings.samples * kSwapInStride * kPage;
  Knobs knobs;
  knobs.memory_limit = bytes + kSwapInHeadroom;
  ManagedRegion region;
  if (!region.Open(knobs, settings.swap_dir, bytes, why)) return false;
  StoreIntoEveryPage(region.data(), bytes);
  int rc = fl_advise(region.data(), bytes, FL_ADVICE_PAGEOUT);
  if (rc != 0) {
    *why = std::string("fl_advise(FL_ADVICE_PAGEOUT): ") + fl_strerror(rc);
    return false;
  }
  TouchPlan plan = StridedShuffled(settings.samples, kSwapInStride, threads);
  row->resident_before = CountResident(region.data(), AllPages(plan));
  fl_stats before = region.Stats();
  Finish(TimeTouches(region.data(), plan, Access::kLoad), row);
  fl_stats after = region.Stats();
  row->io_faults = after.faults_swap_in - before.faults_swap_in;
  row->handler_p50_ns = after.fault_latency_p50_ns;
  row->handler_p99_ns = after.fault_latency_p99_ns;
  return true;
}

bool FaultlineWriteProtectCopy(uint32_t threads, const LatencySettings& settings, LatencyRow* row,
                               std::string* why) {
  const size_t bytes = settings.samples * kPage;
  Knobs knobs;
  knobs.memory_limit = 4 * bytes;  // the region and its snapshot's copies stay in memory
  ManagedRegion region;
  if (!region.Open(knobs, settings.swap_dir, bytes, why)) return false;
  // Dirty and resident: the snapshot write-protects every page and waits for its copy.
  StoreIntoEveryPage(region.data(), bytes);
  fl_snapshot* snapshot = nullptr;
  int rc = fl_snapshot_create(region.data(), bytes, &snapshot);
  if (rc != 0) {
    *why = std::string("fl_snapshot_create: ") + fl_last_error();
    return false;
  }
  fl_stats before = region.Stats();
  Finish(TimeTouches(region.data(), ContiguousSlices(settings.samples, threads), Access::kStore),
         row);
  fl_stats after = region.Stats();
  row->io_faults = after.faults_swap_in - before.faults_swap_in;
  row->handler_p50_ns = after.fault_latency_p50_ns;
  row->handler_p99_ns = after.fault_latency_p99_ns;
  fl_snapshot_release(snapshot);
  return true;
}

// What the kernel swap-in child sends back: this header, then the samples.
struct SwapInReport {
  uint64_t elapsed_ns;
  uint64_t major_faults;
  uint64_t resident_before;
  uint64_t samples;
};

uint64_t MajorFaults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<uint64_t>(usage.ru_majflt);
}

// In the cgroup child: fill the region, write it all to swap with MADV_PAGEOUT, then lower the
// cgroup's limit so that the kernel frees the pages it has written but still keeps in its swap
// cache (a fault there would not read), raise the limit again and time the re-touches.
bool KernelSwapInChild(KernelSwapPeer* peer, size_t bytes, const TouchPlan& plan,
                       std::string* report, std::string* why) {
  AnonRegion region;
  if (!region.Open(bytes, why)) return false;
  StoreIntoEveryPage(region.data(), bytes);
  if (madvise(region.data(), bytes, MADV_PAGEOUT) != 0) {
    *why = std::string("madvise(MADV_PAGEOUT): ") + std::strerror(errno);
    return false;
  }
  // EBUSY while pages are still being written: try again. Pages the kernel still holds after the
  // last try are counted in resident_before, not hidden.
  std::string squeeze_failure;
  for (int tries = 0; tries < kSqueezeTries; ++tries) {
    if (peer->SetLimit(kSqueezeLimit, &squeeze_failure)) break;
  }
  if (!peer->SetLimit(bytes + kSwapInHeadroom, why)) return false;
  SwapInReport header{};
  header.resident_before = CountResident(region.data(), AllPages(plan));
  uint64_t faults_before = MajorFaults();
  TimedTouches touches = TimeTouches(region.data(), plan, Access::kLoad);
  header.major_faults = MajorFaults() - faults_before;
  header.elapsed_ns = touches.elapsed_ns;
  header.samples = touches.samples_ns.size();
  report->append(reinterpret_cast<const char*>(&header), sizeof(header));
  report->append(reinterpret_cast<const char*>(touches.samples_ns.data()),
                 touches.samples_ns.size() * sizeof(uint32_t));
  return true;
}

bool KernelSwapIn(uint32_t threads, const LatencySettings& settings, SharedKernelPeer* shared,
                  LatencyRow* row, std::string* why) {
  KernelSwapPeer* peer = shared->Get(why);
  if (peer == nullptr) return false;
  const size_t bytes = settings.samples * kSwapInStride * kPage;
  if (!peer->SetLimit(bytes + kSwapInHeadroom, why)) return false;
  // Built here, so that the child inherits it already charged to this process's cgroup.
  TouchPlan plan = StridedShuffled(settings.samples, kSwapInStride, threads);
  std::string report;
  auto body = [&](std::string* out, std::string* reason) {
    return KernelSwapInChild(peer, bytes, plan, out, reason);
  };
  if (!peer->RunInChild(body, &report, why)) return false;
  SwapInReport header{};
  if (report.size() < sizeof(header)) {
    *why = "short report from the kernel swap-in child";
    return false;
  }
  std::memcpy(&header, report.data(), sizeof(header));
  if (report.size() != sizeof(header) + header.samples * sizeof(uint32_t)) {
    *why = "malformed report from the kernel swap-in child";
    return false;
  }
  TimedTouches touches;
  touches.elapsed_ns = header.elapsed_ns;
  touches.samples_ns.resize(header.samples);
  std::memcpy(touches.samples_ns.data(), report.data() + sizeof(header),
              header.samples * sizeof(uint32_t));
  Finish(std::move(touches), row);
  row->io_faults = header.major_faults;
  row->resident_before = header.resident_before;
  return true;
}

bool DeviceRead(const LatencySettings& settings, LatencyRow* row, std::string* why) {
  TimedTouches reads;
  if (!TimeDeviceReads(settings.swap_dir, settings.device_file_bytes, settings.samples, &reads,
                       why)) {
    return false;
  }
  Finish(std::move(reads), row);
  row->io_faults = row->summary.samples;
  return true;
}

}  // namespace

bool RunLatencyMode(LatencyMode mode, uint32_t threads, const LatencySettings& settings,
                    SharedKernelPeer* kernel_peer, LatencyRow* row, std::string* why) {
  row->mode = mode;
  row->threads = mode == LatencyMode::kDeviceRead ? 1 : threads;
  switch (mode) {
    case LatencyMode::kKernelFirstTouch:
      return KernelFirstTouch(threads, settings, row, why);
    case LatencyMode::kKernelSwapIn:
      return KernelSwapIn(threads, settings, kernel_peer, row, why);
    case LatencyMode::kFaultlineZeroFill:
      return FaultlineZeroFill(threads, false, settings, row, why);
    case LatencyMode::kFaultlineSelfPaging:
      return FaultlineZeroFill(threads, true, settings, row, why);
    case LatencyMode::kFaultlineSwapIn:
      return FaultlineSwapIn(threads, settings, row, why);
    case LatencyMode::kFaultlineWriteProtectCopy:
      return FaultlineWriteProtectCopy(threads, settings, row, why);
    case LatencyMode::kDeviceRead:
      return DeviceRead(settings, row, why);
  }
  *why = "unknown mode";
  return false;
}

}  // namespace faultline_bench
