// IoRing: the only code that talks to io_uring. Contract:
//  - One IoRing belongs to one thread (SINGLE_ISSUER); it is not thread-safe.
//  - Queue* only fills submission entries; nothing reaches the kernel until Submit/SubmitAndWait.
//    A Queue* call returns false when the submission queue is full: Submit() and call again.
//  - Every completion is handed back exactly once through PopCompletions(), with the caller's
//    user_data and the raw result (bytes transferred, or -errno). Short transfers are not retried
//    here: the caller decides what a short result means.
//  - Buffers are plain (unregistered) memory: registered buffers are long-term pinned, which would
//    make them unusable as UFFDIO_MOVE sources (KERNEL.md).
//  - No method allocates or throws after Create().
//  - Destruction waits for the reads and writes already submitted (the kernel would otherwise go
//    on using their buffers); entries queued but never submitted are dropped. Destroy the ring on
//    its thread or after that thread has exited: completions are delivered through that thread.
#ifndef FAULTLINE_LIB_KERNEL_IO_RING_H_
#define FAULTLINE_LIB_KERNEL_IO_RING_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"

namespace faultline {

struct IoCompletion {
  uint64_t user_data;
  int32_t result;  // bytes transferred, or -errno
  bool more;       // a multishot poll that stays armed (IORING_CQE_F_MORE); false: re-arm it
};

class IoRing {
 public:
  // `entries`: submission queue depth (rounded up to a power of two by the kernel).
  static absl::StatusOr<std::unique_ptr<IoRing>> Create(unsigned entries);
  ~IoRing();
  IoRing(const IoRing&) = delete;
  IoRing& operator=(const IoRing&) = delete;

  bool QueueRead(int fd, void* buf, uint32_t len, uint64_t offset, uint64_t user_data) noexcept;
  bool QueueWrite(int fd, const void* buf, uint32_t len, uint64_t offset,
                  uint64_t user_data) noexcept;
  // A multishot poll for POLLIN on `fd`: a completion (result = poll mask) each time it becomes
  // readable, until cancelled by destruction. Not counted in in_flight(). At most 16 per ring.
  bool QueuePollIn(int fd, uint64_t user_data) noexcept;

  // Submits everything queued. Returns the number submitted or -errno.
  int Submit() noexcept;
  // Submits everything queued, then waits until a completion is ready or `timeout_ns` passes
  // (< 0: no timeout). Returns 0, -ETIME on timeout, -EINTR, or another -errno.
  int SubmitAndWait(int64_t timeout_ns) noexcept;
  // Moves up to `max` ready completions into `out` without blocking; returns how many.
  unsigned PopCompletions(IoCompletion* out, unsigned max) noexcept;

  // Reads and writes queued or submitted whose completion has not been popped yet.
  unsigned in_flight() const noexcept { return in_flight_; }

 private:
  struct Impl;
  explicit IoRing(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  unsigned in_flight_ = 0;
};

}  // namespace faultline

#endif  // FAULTLINE_LIB_KERNEL_IO_RING_H_
