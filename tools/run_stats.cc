#include "run_stats.h"

#include <string.h>

#include <algorithm>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace faultline {
namespace {

// A cursor over the text of one flat JSON object. Each Parse* method consumes what it parses, or
// returns an error naming the byte offset where the text stopped making sense.
class FlatJsonScanner {
 public:
  explicit FlatJsonScanner(absl::string_view text) : text_(text) {}

  void SkipSpace() {
    while (pos_ < text_.size() && absl::ascii_isspace(static_cast<unsigned char>(text_[pos_]))) {
      ++pos_;
    }
  }

  bool AtEnd() const { return pos_ == text_.size(); }

  // Consumes `c` if it is next (after white space).
  bool Consume(char c) {
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  absl::Status Expect(char c) {
    return Consume(c) ? absl::OkStatus()
                      : Error(absl::StrCat("expected '", std::string(1, c), "'"));
  }

  // A string; `raw` gets its text between the quotes, escapes checked but not decoded.
  absl::Status ParseString(absl::string_view* raw) {
    if (!Consume('"')) return Error("expected a string");
    size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] != '"') {
      if (static_cast<unsigned char>(text_[pos_]) < 0x20)
        return Error("control character in a string");
      if (text_[pos_] == '\\') {
        if (absl::Status s = SkipEscape(); !s.ok()) return s;
      } else {
        ++pos_;
      }
    }
    if (AtEnd()) return Error("unterminated string");
    *raw = text_.substr(start, pos_ - start);
    ++pos_;  // the closing quote
    return absl::OkStatus();
  }

  // A scalar value; `*number` gets it when it is an unsigned integer that fits in 64 bits,
  // `*string` when it is a string (escapes kept), else both stay empty. Objects and arrays are
  // errors: the file is flat.
  absl::Status ParseValue(std::optional<uint64_t>* number,
                          std::optional<absl::string_view>* string) {
    number->reset();
    string->reset();
    SkipSpace();
    if (AtEnd()) return Error("expected a value");
    char c = text_[pos_];
    if (c == '"') {
      absl::string_view raw;
      if (absl::Status s = ParseString(&raw); !s.ok()) return s;
      *string = raw;
      return absl::OkStatus();
    }
    if (c == '-' || absl::ascii_isdigit(static_cast<unsigned char>(c))) return ParseNumber(number);
    for (absl::string_view literal : {"true", "false", "null"}) {
      if (text_.substr(pos_, literal.size()) == literal) {
        pos_ += literal.size();
        return absl::OkStatus();
      }
    }
    return Error(c == '{' || c == '[' ? "nested value (the file must be flat)"
                                      : "expected a value");
  }

  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrFormat("%s at byte %d", what, pos_));
  }

 private:
  // REQUIRES: text_[pos_] == '\\'.
  absl::Status SkipEscape() {
    ++pos_;
    if (AtEnd()) return Error("unterminated string");
    char c = text_[pos_++];
    if (c == 'u') {
      for (int i = 0; i < 4; ++i, ++pos_) {
        if (AtEnd() || !absl::ascii_isxdigit(static_cast<unsigned char>(text_[pos_]))) {
          return Error("bad \\u escape");
        }
      }
      return absl::OkStatus();
    }
    return absl::string_view("\"\\/bfnrt").find(c) != absl::string_view::npos ? absl::OkStatus()
                                                                              : Error("bad escape");
  }

  // JSON's number grammar: -?digits(.digits)?([eE][+-]?digits)?
  absl::Status ParseNumber(std::optional<uint64_t>* number) {
    size_t start = pos_;
    bool integer = true;
    if (text_[pos_] == '-') {
      integer = false;
      ++pos_;
    }
    if (SkipDigits() == 0) return Error("bad number");
    if (pos_ < text_.size() && text_[pos_] == '.') {
      integer = false;
      ++pos_;
      if (SkipDigits() == 0) return Error("bad number");
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      integer = false;
      ++pos_;
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
      if (SkipDigits() == 0) return Error("bad number");
    }
    uint64_t value = 0;
    if (integer && absl::SimpleAtoi(text_.substr(start, pos_ - start), &value)) *number = value;
    return absl::OkStatus();
  }

  size_t SkipDigits() {
    size_t start = pos_;
    while (pos_ < text_.size() && absl::ascii_isdigit(static_cast<unsigned char>(text_[pos_]))) {
      ++pos_;
    }
    return pos_ - start;
  }

  absl::string_view text_;
  size_t pos_ = 0;
};

}  // namespace

std::string FormatBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int unit = 0;
  while (unit < 6 && bytes >> (10 * (unit + 1)) != 0) ++unit;
  if (unit == 0) return absl::StrCat(bytes, " B");
  uint64_t scale = uint64_t{1} << (10 * unit);
  if (bytes % scale == 0) return absl::StrCat(bytes / scale, " ", kUnits[unit]);
  return absl::StrFormat("%.1f %s", static_cast<double>(bytes) / static_cast<double>(scale),
                         kUnits[unit]);
}

std::string FormatMicros(uint64_t nanoseconds) {
  return absl::StrFormat("%.1f us", static_cast<double>(nanoseconds) / 1000.0);
}

std::string FormatEnd(const RunOutcome& outcome) {
  std::string end =
      absl::StrFormat("wall %.2f s, exit status %d", outcome.wall_seconds, outcome.exit_status);
  if (outcome.term_signal != 0) {
    const char* name = sigabbrev_np(outcome.term_signal);
    absl::StrAppend(
        &end, " (killed by ",
        name != nullptr ? absl::StrCat("SIG", name) : absl::StrCat("signal ", outcome.term_signal),
        ")");
  }
  return end;
}

absl::StatusOr<RunStats> RunStats::Parse(absl::string_view text) {
  FlatJsonScanner scanner(text);
  RunStats stats;
  if (absl::Status s = scanner.Expect('{'); !s.ok()) return s;
  if (!scanner.Consume('}')) {
    do {
      absl::string_view key;
      std::optional<uint64_t> value;
      std::optional<absl::string_view> string;
      if (absl::Status s = scanner.ParseString(&key); !s.ok()) return s;
      if (absl::Status s = scanner.Expect(':'); !s.ok()) return s;
      if (absl::Status s = scanner.ParseValue(&value, &string); !s.ok()) return s;
      if (value.has_value()) stats.Set(key, *value);
      if (string.has_value()) stats.SetString(key, *string);
    } while (scanner.Consume(','));
    if (absl::Status s = scanner.Expect('}'); !s.ok()) return s;
  }
  scanner.SkipSpace();
  if (!scanner.AtEnd()) return scanner.Error("text after the object");
  return stats;
}

uint64_t RunStats::Get(absl::string_view key) const {
  auto it = values_.find(key);
  return it == values_.end() ? 0 : it->second;
}

std::string RunStats::GetString(absl::string_view key) const {
  auto it = strings_.find(key);
  return it == strings_.end() ? std::string() : it->second;
}

std::string FormatReport(const RunStats& s, const RunOutcome& outcome) {
  // Labels padded to one width so that the values line up.
  std::string report = absl::StrFormat(
      "faultline: limit %s, managed %s at peak, resident peak %s (process peak RSS %s)\n",
      FormatBytes(s.Get("memory_limit")), FormatBytes(s.Get("managed_bytes_peak")),
      FormatBytes(s.Get("resident_bytes_peak")), FormatBytes(outcome.peak_rss_bytes));
  absl::StrAppendFormat(
      &report,
      "faults:    %d zero-fill, %d swap-in, %d write-protect, %d in-flight rescue; "
      "latency p50 %s, p99 %s\n",
      s.Get("faults_zero_fill"), s.Get("faults_swap_in"), s.Get("faults_write_protect"),
      s.Get("faults_in_flight_rescue"), FormatMicros(s.Get("fault_latency_p50_ns")),
      FormatMicros(s.Get("fault_latency_p99_ns")));
  absl::StrAppendFormat(
      &report, "swap:      %s written, %s read; %d I/O errors, %d checksum errors\n",
      FormatBytes(s.Get("bytes_swapped_out")), FormatBytes(s.Get("bytes_swapped_in")),
      s.Get("io_errors"), s.Get("checksum_errors"));
  absl::StrAppend(&report, FormatOvershoot(s), "run:       ", FormatEnd(outcome), "\n");
  return report;
}

std::string FormatOvershoot(const RunStats& s) {
  uint64_t pages = s.Get("limit_overshoot_pages");
  if (pages == 0) return "";
  return absl::StrFormat(
      "limit:     exceeded by up to %d pages (%s) when nothing could be evicted: pages shared "
      "with a forked child, swap full, or all busy (README.md, \"The memory limit\")\n",
      pages, FormatBytes(pages * std::max<uint64_t>(s.Get("page_size"), 1)));
}

std::string FormatNoReport(absl::string_view message, const RunOutcome& outcome) {
  return absl::StrCat("faultline: ", message, "; ", FormatEnd(outcome), "\n");
}

}  // namespace faultline
