// Library threads: started with every signal blocked but SIGBUS (signals belong to the program,
// and a handler running on a fault-handler thread could fault on managed memory and deadlock;
// SIGBUS stays open so that faultline's handler can name a library thread that faults on a
// self-paging region) and named so that they show in `top -H` (fl-fault-N, fl-evict).
//
// No library thread may touch memory faultline manages: it could have to wait for itself. That
// is checked on every fault, always (a compare per fault message): the fault handlers ask
// IsLibraryThread() about each fault's thread id (UFFD_FEATURE_THREAD_ID), and the SIGBUS handler
// of self-paging regions asks OnLibraryThread(); a library thread's fault stops the process with
// LibraryThreadFaulted()'s message instead of deadlocking.
#ifndef FAULTLINE_LIB_CORE_THREADS_H_
#define FAULTLINE_LIB_CORE_THREADS_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <thread>

namespace faultline {

// Starts `body` on a library thread named `name` (cut to 15 characters). The thread's id is in
// the set IsLibraryThread() reads from before `body` runs until after it returns.
std::thread StartLibraryThread(const std::string& name, std::function<void()> body);

// Whether the calling thread is one of faultline's. The interposer passes such a thread's mmap
// calls through unmanaged: a fault-handler thread must never have to page in its own memory.
bool OnLibraryThread() noexcept;

// Whether `tid` is the id of a running library thread. Lock-free, allocation-free.
bool IsLibraryThread(pid_t tid) noexcept;

// A library thread `tid` faulted on managed memory at `address`, which faultline would have to
// page in for it: writes one line naming the thread and the address with write(2) and aborts.
[[noreturn]] void LibraryThreadFaulted(pid_t tid, uintptr_t address, const char* how) noexcept;

}  // namespace faultline

#endif  // FAULTLINE_LIB_CORE_THREADS_H_
