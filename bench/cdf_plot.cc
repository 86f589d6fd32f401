#include "cdf_plot.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

extern char** environ;

namespace faultline_bench {
namespace {

// Points per curve: evenly spaced ranks, plus the last (the maximum), so that a curve of a
// million samples stays a small script and still ends at its worst fault.
constexpr size_t kPointsPerCurve = 2000;

// A gnuplot string literal: single quotes, which gnuplot doubles to escape.
std::string Quoted(const std::string& text) {
  std::string out = "'";
  for (char ch : text) {
    out += ch;
    if (ch == '\'') out += '\'';
  }
  return out + "'";
}

std::string Script(const std::vector<CdfCurve>& curves, const std::string& title,
                   const std::string& png_path) {
  std::string script;
  for (size_t c = 0; c < curves.size(); ++c) {
    const std::vector<uint32_t>& samples = *curves[c].sorted_ns;
    script += "$curve" + std::to_string(c) + " << EOD\n";
    size_t step = std::max<size_t>(1, samples.size() / kPointsPerCurve);
    for (size_t i = 0; i < samples.size(); i += step) {
      char line[64];
      std::snprintf(line, sizeof(line), "%.3f %.6f\n", samples[i] / 1000.0,
                    static_cast<double>(i + 1) / samples.size());
      script += line;
    }
    char last[64];
    std::snprintf(last, sizeof(last), "%.3f 1\n", samples.back() / 1000.0);
    script += last;
    script += "EOD\n";
  }
  script += "set terminal pngcairo size 1200,750 enhanced font 'sans,10'\n";
  script += "set output " + Quoted(png_path) + "\n";
  script += "set title " + Quoted(title) + " noenhanced\n";
  script += "set xlabel 'fault latency (us, log scale)'\n";
  script += "set ylabel 'fraction of faults at or below'\n";
  script += "set logscale x\nset grid xtics ytics mxtics\nset yrange [0:1]\n";
  script += "set key right bottom noenhanced\n";
  script += "plot ";
  for (size_t c = 0; c < curves.size(); ++c) {
    script += (c == 0 ? "" : ", ") + std::string("$curve") + std::to_string(c) +
              " using 1:2 with lines linewidth 2 linecolor " + std::to_string(curves[c].color) +
              " dashtype " + std::to_string(curves[c].dash_type) + " title " +
              Quoted(curves[c].title);
  }
  script += "\n";
  return script;
}

// Ignores SIGPIPE for its lifetime: a gnuplot that dies early must fail the write, not kill
// the bench.
class SigpipeIgnored {
 public:
  SigpipeIgnored() {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ignore, &saved_);
  }
  ~SigpipeIgnored() { sigaction(SIGPIPE, &saved_, nullptr); }
  SigpipeIgnored(const SigpipeIgnored&) = delete;
  SigpipeIgnored& operator=(const SigpipeIgnored&) = delete;

 private:
  struct sigaction saved_ {};
};

}  // namespace

bool PlotLatencyCdf(const std::vector<CdfCurve>& curves, const std::string& title,
                    const std::string& png_path, std::string* why) {
  if (curves.empty()) {
    *why = "no latency rows to plot";
    return false;
  }
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    *why = std::string("pipe2: ") + std::strerror(errno);
    return false;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[0], STDIN_FILENO);
  char arg0[] = "gnuplot";
  char* argv[] = {arg0, nullptr};
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, "gnuplot", &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[0]);
  if (rc != 0) {
    close(fds[1]);
    *why = rc == ENOENT ? "gnuplot is not installed (Debian: apt-get install gnuplot-nox)"
                        : std::string("running gnuplot: ") + std::strerror(rc);
    return false;
  }
  std::string script = Script(curves, title, png_path);
  bool sent = true;
  {
    SigpipeIgnored ignored;
    size_t done = 0;
    while (done < script.size()) {
      ssize_t n = write(fds[1], script.data() + done, script.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        sent = false;
        break;
      }
      done += static_cast<size_t>(n);
    }
  }
  close(fds[1]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!sent || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    *why = "gnuplot failed (status " + std::to_string(status) + "; its message is above)";
    return false;
  }
  return true;
}

}  // namespace faultline_bench
