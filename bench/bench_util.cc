#include "bench_util.h"

#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>

namespace faultline_bench {

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t TimerOverheadNs() {
  constexpr int kPairs = 100000;
  std::vector<uint32_t> samples(kPairs);
  for (int i = 0; i < kPairs; ++i) {
    uint64_t start = NowNs();
    samples[i] = static_cast<uint32_t>(NowNs() - start);
  }
  std::nth_element(samples.begin(), samples.begin() + kPairs / 2, samples.end());
  return samples[kPairs / 2];
}

LatencySummary Summarize(std::vector<uint32_t>* samples_ns, uint64_t elapsed_ns) {
  LatencySummary s;
  std::vector<uint32_t>& v = *samples_ns;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    size_t i = static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)] / 1000.0;
  };
  s.samples = v.size();
  s.p50_us = at(0.50);
  s.p90_us = at(0.90);
  s.p99_us = at(0.99);
  s.p999_us = at(0.999);
  s.max_us = v.back() / 1000.0;
  s.faults_per_s = elapsed_ns > 0 ? static_cast<double>(v.size()) * 1e9 / elapsed_ns : 0;
  return s;
}

void Progress(const char* format, ...) {
  char line[512];
  va_list args;
  va_start(args, format);
  std::vsnprintf(line, sizeof(line), format, args);
  va_end(args);
  // Seconds since the first progress line, to place a disturbance seen elsewhere (a load sampler)
  // in the run.
  static const uint64_t first_ns = NowNs();
  std::fprintf(stderr, "faultline-bench: [%6.1f s] %s\n",
               static_cast<double>(NowNs() - first_ns) / 1e9, line);
}

ProgressTicker::ProgressTicker(std::string what, uint64_t total)
    : what_(std::move(what)), total_(total), last_ns_(NowNs()) {}

void ProgressTicker::MaybePrint(uint64_t done) {
  uint64_t now = NowNs();
  if (now - last_ns_ < 2000000000u || total_ == 0) return;
  last_ns_ = now;
  Progress("  %s: %.0f%%", what_.c_str(), 100.0 * static_cast<double>(done) / total_);
}

Cell Text(std::string text) {
  Cell c;
  c.kind = Cell::Kind::kText;
  c.text = std::move(text);
  return c;
}

Cell Int(uint64_t value) {
  Cell c;
  if (value == kNoValue) return c;
  c.kind = Cell::Kind::kInt;
  c.integer = value;
  c.text = std::to_string(value);
  return c;
}

Cell Num(double value, int precision) {
  Cell c;
  if (!std::isfinite(value)) return c;
  c.kind = Cell::Kind::kNumber;
  c.number = value;
  c.precision = precision;
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.*f", precision, value);
  c.text = buffer;
  return c;
}

void Table::PrintText(FILE* out) const {
  std::fprintf(out, "\n== %s ==\n", title_.c_str());
  // A column is left-aligned, header included, when its cells are text.
  std::vector<size_t> width(columns_.size());
  std::vector<bool> left(columns_.size(), false);
  for (size_t c = 0; c < columns_.size(); ++c) {
    width[c] = columns_[c].label.size();
    for (const auto& row : rows_) {
      width[c] = std::max(width[c], row[c].kind == Cell::Kind::kMissing ? 1 : row[c].text.size());
      left[c] = left[c] || row[c].kind == Cell::Kind::kText;
    }
  }
  auto print_row = [&](auto text_of) {
    std::string line;
    for (size_t c = 0; c < columns_.size(); ++c) {
      std::string text = text_of(c);
      std::string pad(width[c] - text.size(), ' ');
      line += c == 0 ? "" : "  ";
      line += left[c] ? text + pad : pad + text;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::fprintf(out, "%s\n", line.c_str());
  };
  print_row([&](size_t c) { return columns_[c].label; });
  for (const auto& row : rows_) {
    print_row([&](size_t c) { return row[c].kind == Cell::Kind::kMissing ? "-" : row[c].text; });
  }
  for (const auto& note : notes_) std::fprintf(out, "  note: %s\n", note.c_str());
}

std::string JsonString(const std::string& text) {
  std::string out = "\"";
  for (unsigned char ch : text) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += static_cast<char>(ch);
    } else if (ch < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\u%04x", ch);
      out += escaped;
    } else {
      out += static_cast<char>(ch);
    }
  }
  return out + "\"";
}

void Table::PrintJson(FILE* out) const {
  std::fprintf(out, "{\"key\": %s, \"title\": %s, \"rows\": [", JsonString(key_).c_str(),
               JsonString(title_).c_str());
  for (size_t r = 0; r < rows_.size(); ++r) {
    std::fprintf(out, "%s\n    {", r == 0 ? "" : ",");
    for (size_t c = 0; c < columns_.size(); ++c) {
      const Cell& cell = rows_[r][c];
      std::string value = cell.kind == Cell::Kind::kText      ? JsonString(cell.text)
                          : cell.kind == Cell::Kind::kMissing ? "null"
                                                              : cell.text;
      std::fprintf(out, "%s%s: %s", c == 0 ? "" : ", ", JsonString(columns_[c].key).c_str(),
                   value.c_str());
    }
    std::fprintf(out, "}");
  }
  std::fprintf(out, "],\n   \"notes\": [");
  for (size_t n = 0; n < notes_.size(); ++n) {
    std::fprintf(out, "%s%s", n == 0 ? "" : ", ", JsonString(notes_[n]).c_str());
  }
  std::fprintf(out, "]}");
}

std::string LoadAverage() {
  std::string load;
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    char line[128] = {};
    if (std::fgets(line, sizeof(line), f) != nullptr) load = line;
    std::fclose(f);
  }
  if (!load.empty() && load.back() == '\n') load.pop_back();
  return load;
}

Table RunTable() {
  Table table("run", "Run", {{"item", "item"}, {"value", "value"}});
  utsname name{};
  uname(&name);
  table.AddRow({Text("kernel"), Text(std::string(name.release) + " " + name.machine)});
  table.AddRow({Text("cpus online"), Int(static_cast<uint64_t>(sysconf(_SC_NPROCESSORS_ONLN)))});
  table.AddRow({Text("load average at start"), Text(LoadAverage())});
  return table;
}

void PrintTables(const std::vector<Table>& tables, bool json) {
  if (!json) {
    for (const Table& table : tables) table.PrintText(stdout);
    return;
  }
  std::printf("{\"tables\": [\n  ");
  for (size_t i = 0; i < tables.size(); ++i) {
    if (i > 0) std::printf(",\n  ");
    tables[i].PrintJson(stdout);
  }
  std::printf("\n]}\n");
}

}  // namespace faultline_bench
