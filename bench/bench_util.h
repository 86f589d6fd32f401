// Shared pieces of faultline-bench: the clock, latency summaries, the page pattern the out-of-core
// phases write and verify, progress lines on stderr, and result tables printed as text or JSON.
#ifndef FAULTLINE_BENCH_BENCH_UTIL_H_
#define FAULTLINE_BENCH_BENCH_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace faultline_bench {

constexpr size_t kPage = 4096;
constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kGiB = size_t{1} << 30;
// Marks a counter or measurement that does not exist for a row: "-" in text, null in JSON.
constexpr uint64_t kNoValue = ~uint64_t{0};

// CLOCK_MONOTONIC in nanoseconds (vDSO: no system call with the tsc clocksource).
uint64_t NowNs();

// The cost of one NowNs() pair, the floor under every per-fault sample.
uint64_t TimerOverheadNs();

struct LatencySummary {
  size_t samples = 0;
  double p50_us = 0, p90_us = 0, p99_us = 0, p999_us = 0, max_us = 0;
  double faults_per_s = 0;
};

// Sorts *samples_ns and summarises them; `elapsed_ns` is the wall time of the whole sweep.
LatencySummary Summarize(std::vector<uint32_t>* samples_ns, uint64_t elapsed_ns);

// Every 64-bit word of page `page` holds this after the write phase. Never zero, so no page can
// pass for an untouched one.
inline uint64_t PagePattern(uint64_t page) { return (page + 1) * 0x9e3779b97f4a7c15ULL; }

// Prints "faultline-bench: [seconds since the first such line] ..." on stderr.
void Progress(const char* format, ...) __attribute__((format(printf, 1, 2)));

// Reports how far a long loop has come, at most every two seconds.
class ProgressTicker {
 public:
  ProgressTicker(std::string what, uint64_t total);
  // Cheap enough to call once per page: it reads the clock every 4096 calls.
  void Tick(uint64_t done) {
    if ((done & 4095) == 0) MaybePrint(done);
  }

 private:
  void MaybePrint(uint64_t done);
  std::string what_;
  uint64_t total_;
  uint64_t last_ns_;
};

// One cell of a result table: text, an integer or a number printed with `precision` decimals.
struct Cell {
  enum class Kind { kText, kInt, kNumber, kMissing };
  Kind kind = Kind::kMissing;
  std::string text;
  uint64_t integer = 0;
  double number = 0;
  int precision = 0;
};
Cell Text(std::string text);
// kNoValue gives a missing cell.
Cell Int(uint64_t value);
// NaN or infinity gives a missing cell.
Cell Num(double value, int precision);

struct Column {
  std::string key;    // JSON member name
  std::string label;  // text header
};

class Table {
 public:
  Table(std::string key, std::string title, std::vector<Column> columns)
      : key_(std::move(key)), title_(std::move(title)), columns_(std::move(columns)) {}
  // REQUIRES: one cell per column.
  void AddRow(std::vector<Cell> cells) { rows_.push_back(std::move(cells)); }
  void AddNote(std::string note) { notes_.push_back(std::move(note)); }
  bool empty() const { return rows_.empty() && notes_.empty(); }

  void PrintText(FILE* out) const;
  // Prints one JSON object: {"key":..., "title":..., "rows":[{column key: value}], "notes":[]}.
  void PrintJson(FILE* out) const;

 private:
  std::string key_;
  std::string title_;
  std::vector<Column> columns_;
  std::vector<std::vector<Cell>> rows_;
  std::vector<std::string> notes_;
};

// `text` as a JSON string literal, quotes included.
std::string JsonString(const std::string& text);

// The first line of /proc/loadavg.
std::string LoadAverage();
// The "Run" table every benchmark starts with: kernel, CPUs online, load average at start; the
// benchmark adds its own rows.
Table RunTable();

// Prints `tables` on stdout: one after the other as text, or as one JSON object
// {"tables": [...]} of Table::PrintJson objects.
void PrintTables(const std::vector<Table>& tables, bool json);

}  // namespace faultline_bench

#endif  // FAULTLINE_BENCH_BENCH_UTIL_H_
