#include "kernel/io_ring.h"

#include <liburing.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "util/check.h"
#include "util/status.h"

namespace faultline {
namespace {

// SINGLE_ISSUER lets the kernel skip locking on submission; COOP_TASKRUN avoids an interrupt per
// completion and TASKRUN_FLAG tells liburing's peek when completions wait for a kernel entry.
// R_DISABLED postpones choosing the single issuer to the first Submit, so a ring may be created on
// one thread and driven by another.
constexpr unsigned kPreferredFlags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN |
                                     IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_R_DISABLED;
constexpr unsigned kPopBatch = 32;

}  // namespace

struct IoRing::Impl {
  // A multishot poll. Its submission entries carry the address of this record as user_data, so
  // PopCompletions can tell poll completions from reads and writes while handing every caller's
  // user_data back unchanged: no caller can own the address of a record inside this object.
  struct Poll {
    enum class State { kFree, kArmed, kNeedsArm };
    State state = State::kFree;
    int fd = -1;
    uint64_t user_data = 0;
  };
  static constexpr unsigned kMaxPolls = 16;

  uint64_t TagOf(const Poll& poll) const { return reinterpret_cast<uintptr_t>(&poll); }

  Poll* PollFor(uint64_t tag) {
    const uint64_t first = TagOf(polls[0]);
    if (tag < first || tag > TagOf(polls[kMaxPolls - 1]) || (tag - first) % sizeof(Poll) != 0) {
      return nullptr;
    }
    return &polls[(tag - first) / sizeof(Poll)];
  }

  io_uring_sqe* NextSqe(bool is_io) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    if (sqe != nullptr) sqe_is_io[static_cast<size_t>(sqe - ring.sq.sqes)] = is_io;
    return sqe;
  }

  bool Arm(Poll& poll) {
    io_uring_sqe* sqe = NextSqe(/*is_io=*/false);
    if (sqe == nullptr) return false;
    io_uring_prep_poll_multishot(sqe, poll.fd, POLLIN);
    io_uring_sqe_set_data64(sqe, TagOf(poll));
    poll.state = Poll::State::kArmed;
    return true;
  }

  // Readies the ring for io_uring_enter from this thread and re-arms polls the kernel ended.
  int PrepareSubmit() {
    if (!enabled) {
      if (syscall(__NR_io_uring_register, ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0) !=
          0) {
        return -errno;
      }
      enabled = true;
    }
    for (Poll& poll : polls) {
      if (poll.state == Poll::State::kNeedsArm && !Arm(poll)) break;
    }
    return 0;
  }

  io_uring ring{};
  bool enabled = true;
  std::array<Poll, kMaxPolls> polls;
  // Per submission entry index: whether the entry last filled there is a read or write.
  std::unique_ptr<bool[]> sqe_is_io;
};

absl::StatusOr<std::unique_ptr<IoRing>> IoRing::Create(unsigned entries) {
  if (entries == 0) return ErrnoError(EINVAL, "io_uring", "a ring needs at least one entry");
  auto impl = std::make_unique<Impl>();
  io_uring_params params{};
  params.flags = kPreferredFlags;
  int rc = io_uring_queue_init_params(entries, &impl->ring, &params);
  if (rc == -EINVAL) {
    params = io_uring_params{};
    rc = io_uring_queue_init_params(entries, &impl->ring, &params);
  }
  if (rc == -EPERM) {
    return ErrnoError(EPERM, "io_uring",
                      "not permitted (is it disabled by the sysctl kernel.io_uring_disabled?)");
  }
  if (rc < 0) {
    return ErrnoError(-rc, "io_uring setup with " + std::to_string(entries) + " entries");
  }
  impl->enabled = (params.flags & IORING_SETUP_R_DISABLED) == 0;
  if ((params.features & IORING_FEAT_EXT_ARG) == 0) {
    // Without it, liburing implements wait timeouts with entries of its own in the ring.
    io_uring_queue_exit(&impl->ring);
    return ErrnoError(ENOSYS, "io_uring", "the kernel lacks IORING_FEAT_EXT_ARG (Linux 5.11)");
  }
  impl->sqe_is_io = std::make_unique<bool[]>(impl->ring.sq.ring_entries);
  return std::unique_ptr<IoRing>(new IoRing(std::move(impl)));
}

IoRing::IoRing(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

// Waits for the reads and writes the kernel has taken, so that it no longer touches the caller's
// buffers once the ring is gone; entries never submitted are dropped.
IoRing::~IoRing() {
  io_uring& ring = impl_->ring;
  unsigned never_submitted_io = 0;
  for (unsigned position = __atomic_load_n(ring.sq.khead, __ATOMIC_ACQUIRE);
       position != ring.sq.sqe_tail; ++position) {
    if (impl_->sqe_is_io[position & ring.sq.ring_mask]) ++never_submitted_io;
  }
  unsigned outstanding = in_flight_ - never_submitted_io;
  while (outstanding > 0) {
    io_uring_cqe* cqe = nullptr;
    const int rc = io_uring_wait_cqe(&ring, &cqe);
    if (rc == -EINTR) continue;
    if (rc < 0) break;
    if (impl_->PollFor(cqe->user_data) == nullptr) --outstanding;
    io_uring_cqe_seen(&ring, cqe);
  }
  io_uring_queue_exit(&ring);
}

bool IoRing::QueueRead(int fd, void* buf, uint32_t len, uint64_t offset,
                       uint64_t user_data) noexcept {
  io_uring_sqe* sqe = impl_->NextSqe(/*is_io=*/true);
  if (sqe == nullptr) return false;
  io_uring_prep_read(sqe, fd, buf, len, offset);
  io_uring_sqe_set_data64(sqe, user_data);
  ++in_flight_;
  return true;
}

bool IoRing::QueueWrite(int fd, const void* buf, uint32_t len, uint64_t offset,
                        uint64_t user_data) noexcept {
  io_uring_sqe* sqe = impl_->NextSqe(/*is_io=*/true);
  if (sqe == nullptr) return false;
  io_uring_prep_write(sqe, fd, buf, len, offset);
  io_uring_sqe_set_data64(sqe, user_data);
  ++in_flight_;
  return true;
}

bool IoRing::QueuePollIn(int fd, uint64_t user_data) noexcept {
  auto free_poll = std::find_if(impl_->polls.begin(), impl_->polls.end(), [](const Impl::Poll& p) {
    return p.state == Impl::Poll::State::kFree;
  });
  FL_CHECK(free_poll != impl_->polls.end(), "too many multishot polls on one IoRing");
  free_poll->fd = fd;
  free_poll->user_data = user_data;
  if (impl_->Arm(*free_poll)) return true;
  free_poll->state = Impl::Poll::State::kFree;
  return false;
}

int IoRing::Submit() noexcept {
  if (const int rc = impl_->PrepareSubmit(); rc < 0) return rc;
  return io_uring_submit(&impl_->ring);
}

int IoRing::SubmitAndWait(int64_t timeout_ns) noexcept {
  if (const int rc = impl_->PrepareSubmit(); rc < 0) return rc;
  int rc;
  if (timeout_ns < 0) {
    rc = io_uring_submit_and_wait(&impl_->ring, 1);
  } else {
    __kernel_timespec timeout{};
    timeout.tv_sec = timeout_ns / 1'000'000'000;
    timeout.tv_nsec = timeout_ns % 1'000'000'000;
    io_uring_cqe* cqe = nullptr;
    rc = io_uring_submit_and_wait_timeout(&impl_->ring, &cqe, 1, &timeout, nullptr);
  }
  if (rc < 0) return rc;
  // When it submitted something, io_uring_enter (and liburing 2.3 after it) returns the number
  // submitted even if the wait then timed out or was interrupted.
  if (io_uring_cq_ready(&impl_->ring) > 0) return 0;
  return timeout_ns < 0 ? -EINTR : -ETIME;
}

unsigned IoRing::PopCompletions(IoCompletion* out, unsigned max) noexcept {
  unsigned popped = 0;
  while (popped < max) {
    io_uring_cqe* batch[kPopBatch];
    const unsigned ready =
        io_uring_peek_batch_cqe(&impl_->ring, batch, std::min(kPopBatch, max - popped));
    if (ready == 0) break;
    for (unsigned i = 0; i < ready; ++i) {
      const io_uring_cqe& cqe = *batch[i];
      Impl::Poll* poll = impl_->PollFor(cqe.user_data);
      if (poll == nullptr) {
        out[popped++] = {cqe.user_data, cqe.res};
        --in_flight_;
        continue;
      }
      out[popped++] = {poll->user_data, cqe.res};
      if ((cqe.flags & IORING_CQE_F_MORE) == 0) {
        // The kernel ended the poll: after an event (e.g. the completion queue was full) it is
        // armed again at the next submit; after an error the caller has seen the error.
        poll->state = cqe.res > 0 ? Impl::Poll::State::kNeedsArm : Impl::Poll::State::kFree;
      }
    }
    io_uring_cq_advance(&impl_->ring, ready);
  }
  return popped;
}

}  // namespace faultline
