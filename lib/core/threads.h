// Library threads: started with every signal blocked (signals belong to the program, and a
// handler running on a fault-handler thread could fault on managed memory and deadlock) and named
// so that they show in `top -H` (fl-fault-N, fl-evict).
#ifndef FAULTLINE_LIB_CORE_THREADS_H_
#define FAULTLINE_LIB_CORE_THREADS_H_

#include <functional>
#include <string>
#include <thread>

namespace faultline {

std::thread StartLibraryThread(const std::string& name, std::function<void()> body);

// Whether the calling thread is one of faultline's. The interposer passes such a thread's mmap
// calls through unmanaged: a fault-handler thread must never have to page in its own memory.
bool OnLibraryThread() noexcept;

}  // namespace faultline

#endif  // FAULTLINE_LIB_CORE_THREADS_H_
