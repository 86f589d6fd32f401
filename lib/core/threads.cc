#include "core/threads.h"

#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>

namespace faultline {
namespace {

// Initial-exec: the library is loaded at start-up (or preloaded), and reading the flag must not
// allocate, as a dynamic TLS access might.
__attribute__((tls_model("initial-exec"))) thread_local bool t_library_thread = false;

// The running library threads: a slot holds a thread id (0: free) and the thread's name. A
// thread claims a free slot with a compare-and-swap of its id before its body runs and frees it
// after, so that a program thread that later gets the same id from the kernel is not taken for
// it. Acquire/release: a reader that sees an id sees the name written before it.
constexpr int kMaxLibraryThreads = 64;
struct LibraryThreadSlot {
  std::atomic<pid_t> tid{0};
  char name[16];
};
std::array<LibraryThreadSlot, kMaxLibraryThreads> g_library_threads;
// Slots at and past this index have never been used: a lookup (once per fault) stops there.
// Only grows; relaxed is enough, as a slot's own tid is read with acquire.
std::atomic<int> g_slots_used{0};

LibraryThreadSlot* FindSlot(pid_t tid) noexcept {
  int used = g_slots_used.load(std::memory_order_relaxed);
  for (int i = 0; i < used; ++i) {
    if (g_library_threads[i].tid.load(std::memory_order_acquire) == tid) {
      return &g_library_threads[i];
    }
  }
  return nullptr;
}

LibraryThreadSlot* Register(pid_t tid, const char* name) noexcept {
  for (int i = 0; i < kMaxLibraryThreads; ++i) {
    LibraryThreadSlot& slot = g_library_threads[i];
    pid_t expected = 0;
    if (slot.tid.compare_exchange_strong(expected, -1, std::memory_order_acquire)) {
      std::memcpy(slot.name, name, sizeof(slot.name));
      int used = g_slots_used.load(std::memory_order_relaxed);
      while (used <= i && !g_slots_used.compare_exchange_weak(used, i + 1)) {
      }
      slot.tid.store(tid, std::memory_order_release);
      return &slot;
    }
  }
  return nullptr;  // more than kMaxLibraryThreads at once: this one goes unchecked
}

}  // namespace

bool OnLibraryThread() noexcept { return t_library_thread; }

bool IsLibraryThread(pid_t tid) noexcept { return tid > 0 && FindSlot(tid) != nullptr; }

void LibraryThreadFaulted(pid_t tid, uintptr_t address, const char* how) noexcept {
  LibraryThreadSlot* slot = FindSlot(tid);
  char line[256];
  auto result = fmt::format_to_n(
      line, sizeof(line) - 1,
      "faultline: fatal: library thread {} (tid {}) faulted on managed memory at {:#x} ({}): "
      "faultline would have to page itself; aborting\n",
      slot != nullptr ? slot->name : "?", tid, address, how);
  size_t length = result.size < sizeof(line) - 1 ? result.size : sizeof(line) - 1;
  line[length - 1] = '\n';
  ssize_t ignored = write(STDERR_FILENO, line, length);
  (void)ignored;
  std::abort();
}

std::thread StartLibraryThread(const std::string& name, std::function<void()> body) {
  // The name is copied here, on the starting thread: a library thread does not allocate.
  std::array<char, 16> short_name{};
  std::memcpy(short_name.data(), name.data(), std::min(name.size(), short_name.size() - 1));
  sigset_t blocked, previous;
  sigfillset(&blocked);
  sigdelset(&blocked, SIGBUS);
  pthread_sigmask(SIG_SETMASK, &blocked, &previous);
  std::thread thread([short_name, body = std::move(body)] {
    pthread_setname_np(pthread_self(), short_name.data());
    t_library_thread = true;
    LibraryThreadSlot* slot = Register(gettid(), short_name.data());
    body();
    if (slot != nullptr) slot->tid.store(0, std::memory_order_release);
  });
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return thread;
}

}  // namespace faultline
