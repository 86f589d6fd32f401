// faultline's own threads never touch the memory it manages (docs/design.md, "faultline must
// never page itself"), and breaking that rule is caught: a library thread that faults on a
// managed page stops the process with one line naming the thread and the address
// (core/threads.h), through the uffd fault path and through the SIGBUS handler of self-paging
// regions, instead of deadlocking or dying without a word.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <string>
#include <thread>

#include "core/threads.h"
#include "faultline/faultline.h"
#include "support/test_support.h"

namespace {

constexpr size_t kMiB = size_t{1} << 20;

// In a child process: starts a runtime, maps a region (self-paging or not) and has a library
// thread read a page of it that was never touched. Returns the child's stderr and wait status.
std::string RunLibraryThreadFault(bool self_paging, int* status, void** address) {
  int out[2];
  REQUIRE(pipe(out) == 0);
  // Where the region will be: the child reports it on stdout's pipe.
  int where[2];
  REQUIRE(pipe(where) == 0);
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // No Catch2 here (nor its signal handlers): a failure is an exit code the parent checks.
    signal(SIGABRT, SIG_DFL);
    dup2(out[1], STDERR_FILENO);
    close(out[0]);
    close(where[0]);
    fl_config config = faultline::test::TestConfig(16 * kMiB);
    if (fl_init(&config) != 0) _exit(10);
    void* region = nullptr;
    if (fl_map_flags(8 * kMiB, self_paging ? FL_MAP_SELF_PAGING : 0, &region) != 0) _exit(11);
    // A program thread's fault on the same region is served as always.
    static_cast<volatile char*>(region)[0] = 1;
    char* page = static_cast<char*>(region) + 4 * kMiB;
    if (write(where[1], &page, sizeof(page)) != sizeof(page)) _exit(12);
    std::thread thread = faultline::StartLibraryThread(
        "fl-test-toucher", [page] { (void)*static_cast<volatile char*>(page); });
    thread.join();
    _exit(0);  // the library thread's read was served: the check is missing
  }
  close(out[1]);
  close(where[1]);
  *address = nullptr;
  ssize_t got = read(where[0], address, sizeof(*address));
  close(where[0]);
  std::string text;
  char buffer[512];
  ssize_t n;
  while ((n = read(out[0], buffer, sizeof(buffer))) > 0) text.append(buffer, size_t(n));
  close(out[0]);
  REQUIRE(waitpid(child, status, 0) == child);
  INFO(text);
  REQUIRE(got == sizeof(*address));
  return text;
}

}  // namespace

TEST_CASE("a library thread that faults on a managed page stops the process, named", "[threads]") {
  faultline::test::SkipUnlessUserfaultfd();
  const bool self_paging = GENERATE(false, true);
  INFO((self_paging ? "self-paging region (SIGBUS)" : "region served by fault handlers"));
  int status = 0;
  void* address = nullptr;
  std::string text = RunLibraryThreadFault(self_paging, &status, &address);
  INFO("child stderr: " << text);
  CHECK(WIFSIGNALED(status));
  CHECK((WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT));
  char expected[64];
  std::snprintf(expected, sizeof(expected), "at %p (", address);
  CHECK(text.find("library thread fl-test-touche") != std::string::npos);
  CHECK(text.find(expected) != std::string::npos);
  CHECK(text.find(self_paging ? "(SIGBUS)" : "(userfaultfd)") != std::string::npos);
}

TEST_CASE("a thread id is a library thread's only while that thread runs", "[threads]") {
  pid_t tid = 0;
  bool during = false;
  std::thread thread = faultline::StartLibraryThread("fl-test-id", [&] {
    tid = gettid();
    during = faultline::IsLibraryThread(tid) && faultline::OnLibraryThread();
  });
  thread.join();
  CHECK(during);
  CHECK_FALSE(faultline::IsLibraryThread(tid));
  CHECK_FALSE(faultline::IsLibraryThread(gettid()));
  CHECK_FALSE(faultline::OnLibraryThread());
}
