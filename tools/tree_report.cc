#include "tree_report.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

namespace faultline {
namespace {

// Members that name an image rather than count anything: never summed.
constexpr absl::string_view kIdentity[] = {"pid",         "ppid",     "image",  "pager",
                                           "start_ticks", "start_ns", "wall_us"};
// Members whose total is the largest value of any image.
constexpr absl::string_view kLargest[] = {"memory_limit",         "page_size",
                                          "fault_latency_p50_ns", "fault_latency_p99_ns",
                                          "fault_latency_max_ns", "limit_overshoot_pages"};

// Trees with more images than this get a table of only those worth a look.
constexpr size_t kMaxTableLines = 24;

template <size_t N>
bool IsOneOf(absl::string_view key, const absl::string_view (&keys)[N]) {
  return std::find(std::begin(keys), std::end(keys), key) != std::end(keys);
}

// Whether the process `pid` that started at `start_ticks` (/proc/PID/stat field 22) still exists.
bool StillRunning(uint64_t pid, uint64_t start_ticks) {
  std::string path = absl::StrCat("/proc/", pid, "/stat");
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char stat[1024];
  ssize_t n = read(fd, stat, sizeof(stat) - 1);
  close(fd);
  if (n <= 0) return false;
  stat[n] = '\0';
  const char* at = std::strrchr(stat, ')');
  if (at == nullptr || at[1] != ' ' || at[2] == 'Z') return false;  // a zombie has ended
  for (int field = 2; field < 22 && at != nullptr; ++field) at = std::strchr(at + 1, ' ');
  return at != nullptr && std::strtoull(at + 1, nullptr, 10) == start_ticks;
}

std::string JsonString(absl::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      absl::StrAppend(&out, "\\", std::string(1, c));
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppendFormat(&out, "\\u%04x", c);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// The members of `stats` as JSON text, without braces: integers, then strings (escapes as read).
std::string Members(const RunStats& stats) {
  std::string out;
  for (const auto& [key, value] : stats.values()) {
    absl::StrAppend(&out, out.empty() ? "" : ",", "\"", key, "\":", value);
  }
  for (const auto& [key, raw] : stats.strings()) {
    absl::StrAppend(&out, out.empty() ? "" : ",", "\"", key, "\":\"", raw, "\"");
  }
  return out;
}

uint64_t Faults(const RunStats& s) {
  return s.Get("faults_zero_fill") + s.Get("faults_swap_in") + s.Get("faults_write_protect") +
         s.Get("faults_in_flight_rescue");
}

std::string TableLine(const ImageReport& image) {
  const RunStats& s = image.stats;
  std::string command = s.GetString("command");
  if (image.end == "malformed") {
    return absl::StrFormat("  %s: malformed statistics (%s)\n", image.file, image.error);
  }
  std::string line = absl::StrFormat("  %7d  %-15s", s.Get("pid"), command.empty() ? "?" : command);
  if (image.end == "lost" || image.end == "running") {
    return absl::StrCat(line, image.end == "lost"
                                  ? "  no statistics: ended without exit or exec (killed by a "
                                    "signal, or crashed)\n"
                                  : "  no statistics: still running when the command ended\n");
  }
  absl::StrAppendFormat(&line, " %10s %10s %9d %9d %9d %10s %9.2f s  %s",
                        FormatBytes(s.Get("managed_bytes_peak")),
                        FormatBytes(s.Get("resident_bytes_peak")), Faults(s), s.Get("evictions"),
                        s.Get("faults_swap_in"), FormatBytes(s.Get("vm_hwm_bytes")),
                        static_cast<double>(s.Get("wall_us")) / 1e6, image.end);
  if (s.Get("pager") == 0) absl::StrAppend(&line, " (forked, no pager)");
  return line + "\n";
}

}  // namespace

TreeReport BuildTreeReport(const std::vector<StatsEntry>& entries) {
  TreeReport report;
  for (const StatsEntry& entry : entries) {
    ImageReport image;
    image.file = entry.name;
    absl::StatusOr<RunStats> stats = RunStats::Parse(entry.text);
    if (!stats.ok()) {
      image.end = "malformed";
      image.error = std::string(stats.status().message());
    } else {
      image.stats = *std::move(stats);
      image.end = image.stats.GetString("end");
      if (image.end != "exit" && image.end != "exec") {
        image.end = StillRunning(image.stats.Get("pid"), image.stats.Get("start_ticks")) ? "running"
                                                                                         : "lost";
      }
    }
    if (image.end != "exit" && image.end != "exec") {
      ++report.without_summary;
    } else {
      for (const auto& [key, value] : image.stats.values()) {
        if (IsOneOf(key, kIdentity)) continue;
        uint64_t total = report.total.Get(key);
        report.total.Set(key, IsOneOf(key, kLargest) ? std::max(total, value) : total + value);
      }
    }
    report.images.push_back(std::move(image));
  }
  std::stable_sort(report.images.begin(), report.images.end(),
                   [](const ImageReport& a, const ImageReport& b) {
                     bool a_bad = a.end == "malformed", b_bad = b.end == "malformed";
                     if (a_bad != b_bad) return b_bad;
                     return a.stats.Get("start_ns") < b.stats.Get("start_ns");
                   });
  return report;
}

std::string FormatTreeReport(const TreeReport& report, const RunOutcome& outcome) {
  const RunStats& s = report.total;
  size_t count = report.images.size();
  if (count == 1 && report.without_summary == 0) return FormatReport(s, outcome);
  std::string text = absl::StrFormat(
      "faultline: limit %s per process; %d processes: managed %s at peak, resident peak %s (sums "
      "of each process's peak); peak RSS %s (largest process), %s (sum of each process's)\n",
      FormatBytes(s.Get("memory_limit")), count, FormatBytes(s.Get("managed_bytes_peak")),
      FormatBytes(s.Get("resident_bytes_peak")), FormatBytes(outcome.peak_rss_bytes),
      FormatBytes(s.Get("vm_hwm_bytes")));
  absl::StrAppendFormat(
      &text,
      "faults:    %d zero-fill, %d swap-in, %d write-protect, %d in-flight rescue; "
      "latency p50 %s, p99 %s (worst process)\n",
      s.Get("faults_zero_fill"), s.Get("faults_swap_in"), s.Get("faults_write_protect"),
      s.Get("faults_in_flight_rescue"), FormatMicros(s.Get("fault_latency_p50_ns")),
      FormatMicros(s.Get("fault_latency_p99_ns")));
  absl::StrAppendFormat(
      &text, "swap:      %s written, %s read; %d I/O errors, %d checksum errors\n",
      FormatBytes(s.Get("bytes_swapped_out")), FormatBytes(s.Get("bytes_swapped_in")),
      s.Get("io_errors"), s.Get("checksum_errors"));
  absl::StrAppend(&text, FormatOvershoot(s), "run:       ", FormatEnd(outcome), "\n");
  absl::StrAppendFormat(&text, "processes: %d", count);
  if (report.without_summary > 0) {
    absl::StrAppendFormat(&text, ", %d without statistics", report.without_summary);
  }
  // A large tree (make, a shell script) lists the images that managed memory or left no summary;
  // the JSON lists every one.
  const bool all = count <= kMaxTableLines;
  size_t left_out = 0;
  std::string lines;
  for (const ImageReport& image : report.images) {
    bool notable = image.end != "exit" && image.end != "exec";
    if (all || notable || image.stats.Get("managed_bytes_peak") > 0) {
      absl::StrAppend(&lines, TableLine(image));
    } else {
      ++left_out;
    }
  }
  absl::StrAppendFormat(&text, "\n  %7s  %-15s %10s %10s %9s %9s %9s %10s %11s  %s\n%s", "pid",
                        "command", "managed", "resident", "faults", "evictions", "swap-ins",
                        "peak RSS", "wall", "end", lines);
  if (left_out > 0) {
    absl::StrAppendFormat(&text, "  and %d more that managed no memory (--json lists every one)\n",
                          left_out);
  }
  return text;
}

std::string FormatTreeJson(const TreeReport& report, const RunOutcome& outcome) {
  std::string json = "{\"processes\":[";
  bool first = true;
  for (const ImageReport& image : report.images) {
    if (!first) json += ',';
    first = false;
    if (image.end == "malformed") {
      absl::StrAppend(&json, "{\"file\":", JsonString(image.file),
                      ",\"end\":\"malformed\",\"error\":", JsonString(image.error), "}");
      continue;
    }
    RunStats shown = image.stats;
    shown.SetString("end", image.end);
    absl::StrAppend(&json, "{", Members(shown), "}");
  }
  absl::StrAppendFormat(&json, "],\"process_count\":%d,\"processes_without_summary\":%d",
                        report.images.size(), report.without_summary);
  std::string totals = Members(report.total);
  if (!totals.empty()) absl::StrAppend(&json, ",", totals);
  absl::StrAppendFormat(&json, ",\"exit_status\":%d,\"peak_rss_bytes\":%d,\"wall_seconds\":%.3f}\n",
                        outcome.exit_status, outcome.peak_rss_bytes, outcome.wall_seconds);
  return json;
}

}  // namespace faultline
