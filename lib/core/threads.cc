#include "core/threads.h"

#include <pthread.h>
#include <signal.h>

namespace faultline {
namespace {
// Initial-exec: the library is loaded at start-up (or preloaded), and reading the flag must not
// allocate, as a dynamic TLS access might.
__attribute__((tls_model("initial-exec"))) thread_local bool t_library_thread = false;
}  // namespace

bool OnLibraryThread() noexcept { return t_library_thread; }

std::thread StartLibraryThread(const std::string& name, std::function<void()> body) {
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  std::thread thread([name, body = std::move(body)] {
    pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
    t_library_thread = true;
    body();
  });
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return thread;
}

}  // namespace faultline
