#include "snapshot_command.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "snapshot/snapshot_file.h"

namespace faultline {

const char kSnapshotUsage[] =
    "usage: faultline snapshot info FILE [--json]\n"
    "       faultline snapshot verify FILE [--json]\n"
    "       faultline snapshot pages FILE [--from N] [--count N]\n"
    "\n"
    "Inspects a snapshot file saved by faultline and checks it.\n"
    "\n"
    "Commands:\n"
    "  info    the header: page size, pages of each kind (data, zero, lost), the address the\n"
    "          snapshot was taken at, when, and the file's size\n"
    "  verify  reads every data page and checks it against its checksum; lists each bad page\n"
    "  pages   one line per page: index, kind, checksum, and the file offset of its data\n"
    "\n"
    "Options:\n"
    "  --json       info, verify: print one JSON object on stdout instead of text\n"
    "  --from N     pages: start at page N (default 0)\n"
    "  --count N    pages: list at most N pages (default: all to the end)\n"
    "  -h, --help   show this help\n"
    "Options also take the form --name=VALUE.\n"
    "\n"
    "Page kinds: data (stored, with a CRC-32C), zero (all zeros, nothing stored), lost "
    "(unreadable\n"
    "when the snapshot was taken; reading it from a loaded snapshot raises SIGBUS).\n"
    "\n"
    "Exit status: 0 done (verify: every data page is intact); 1 the file cannot be read, is not a\n"
    "snapshot, is truncated or corrupt, or has bad pages; 2 for a usage error.\n";

namespace {

constexpr int kExitDamaged = 1;
constexpr int kExitUsage = 2;

enum class Verb { kInfo, kVerify, kPages };

struct SnapshotOptions {
  bool help = false;
  Verb verb = Verb::kInfo;
  std::string verb_name;
  std::string file;
  bool json = false;
  uint64_t from = 0;
  std::optional<uint64_t> count;
};

// "faultline snapshot[ VERB]: <message>" on stderr.
int Fail(const SnapshotOptions& options, absl::string_view message, int exit_status) {
  std::string who = "faultline snapshot";
  if (!options.verb_name.empty()) absl::StrAppend(&who, " ", options.verb_name);
  absl::FPrintF(stderr, "%s: %s\n", who, message);
  if (exit_status == kExitUsage) std::fputs("Try 'faultline snapshot --help'.\n", stderr);
  return exit_status;
}

absl::StatusOr<uint64_t> ParseCount(absl::string_view option, absl::string_view value) {
  uint64_t number = 0;
  if (value.empty() || value[0] == '-' || value[0] == '+' || !absl::SimpleAtoi(value, &number)) {
    return absl::InvalidArgumentError(
        absl::StrCat(option, ": '", value, "' is not a whole number"));
  }
  return number;
}

// Fills `options` from the arguments after "snapshot"; an error is one line for Fail().
absl::Status ParseSnapshotOptions(std::span<char* const> args, SnapshotOptions& options) {
  for (char* arg : args) {
    absl::string_view text = arg;
    if (text == "--") break;
    if (text == "-h" || text == "--help") {
      options.help = true;
      return absl::OkStatus();
    }
  }
  if (args.empty()) return absl::InvalidArgumentError("a command is required: info, verify, pages");
  const absl::string_view verb = args[0];
  if (verb == "info") {
    options.verb = Verb::kInfo;
  } else if (verb == "verify") {
    options.verb = Verb::kVerify;
  } else if (verb == "pages") {
    options.verb = Verb::kPages;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown command '", verb, "'"));
  }
  options.verb_name = std::string(verb);

  std::vector<absl::string_view> files;
  bool options_ended = false;
  for (size_t i = 1; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (options_ended || arg.empty() || arg[0] != '-' || arg == "-") {
      files.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_ended = true;
      continue;
    }
    absl::string_view name = arg.substr(0, arg.find('='));
    const bool for_pages = name == "--from" || name == "--count";
    if (name == "--json" && options.verb != Verb::kPages) {
      if (name != arg) return absl::InvalidArgumentError("--json takes no value");
      options.json = true;
    } else if (for_pages && options.verb == Verb::kPages) {
      absl::string_view value;
      if (name != arg) {
        value = arg.substr(name.size() + 1);
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return absl::InvalidArgumentError(absl::StrCat(name, " needs a value"));
      }
      absl::StatusOr<uint64_t> number = ParseCount(name, value);
      if (!number.ok()) return number.status();
      if (name == "--from") {
        options.from = *number;
      } else {
        options.count = *number;
      }
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown option ", name));
    }
  }
  if (files.size() != 1) {
    return absl::InvalidArgumentError(files.empty() ? "a snapshot FILE is required"
                                                    : "only one FILE at a time");
  }
  options.file = std::string(files[0]);
  return absl::OkStatus();
}

// `text` as a JSON string, quotes included.
std::string JsonString(absl::string_view text) {
  std::string json = "\"";
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      json += '\\';
      json += c;
    } else if (byte < 0x20) {
      absl::StrAppendFormat(&json, "\\u%04x", byte);
    } else {
      json += c;
    }
  }
  return json + "\"";
}

std::string FormatChecksum(uint32_t checksum) { return absl::StrFormat("%#010x", checksum); }

std::string FormatUtc(uint64_t unix_seconds) {
  const time_t seconds = static_cast<time_t>(unix_seconds);
  struct tm utc {};
  char text[64];
  if (gmtime_r(&seconds, &utc) == nullptr ||
      std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S UTC", &utc) == 0) {
    return absl::StrCat(unix_seconds, " s after the epoch");
  }
  return text;
}

int Info(const SnapshotOptions& options, const SnapshotFileReader& reader) {
  uint64_t pages_of_kind[3] = {0, 0, 0};
  for (uint64_t index = 0; index < reader.page_count(); ++index) {
    ++pages_of_kind[static_cast<int>(reader.kind(index))];
  }
  const uint64_t zero = pages_of_kind[static_cast<int>(SnapshotPageKind::kZero)];
  const uint64_t data = pages_of_kind[static_cast<int>(SnapshotPageKind::kData)];
  const uint64_t lost = pages_of_kind[static_cast<int>(SnapshotPageKind::kLost)];
  if (options.json) {
    absl::PrintF(
        "{\"file\":%s,\"format_version\":%d,\"page_size\":%d,\"pages\":%d,\"data_pages\":%d,"
        "\"zero_pages\":%d,\"lost_pages\":%d,\"source_address\":%d,"
        "\"created_unix_seconds\":%d,\"file_bytes\":%d}\n",
        JsonString(options.file), kSnapshotFormatVersion, reader.page_size(), reader.page_count(),
        data, zero, lost, reader.source_address(), reader.created_unix_seconds(),
        reader.file_size());
    return 0;
  }
  const uint64_t memory_bytes = reader.page_count() * reader.page_size();
  absl::PrintF(
      "file:            %s\n"
      "format version:  %d\n"
      "page size:       %d bytes\n"
      "pages:           %d (%d bytes of memory)\n"
      "  data:          %d (%d bytes stored)\n"
      "  zero:          %d\n"
      "  lost:          %d\n"
      "source address:  %#x\n"
      "created:         %s\n"
      "file size:       %d bytes\n",
      options.file, kSnapshotFormatVersion, reader.page_size(), reader.page_count(), memory_bytes,
      data, data * reader.page_size(), zero, lost, reader.source_address(),
      FormatUtc(reader.created_unix_seconds()), reader.file_size());
  return 0;
}

// A data page that failed verification: its checksum did not match, or it could not be read.
struct BadPage {
  uint64_t index;
  uint32_t actual_checksum;  // when `read_error` is ok
  absl::Status read_error;
};

int Verify(const SnapshotOptions& options, const SnapshotFileReader& reader) {
  std::vector<uint8_t> page(reader.page_size());
  std::vector<BadPage> bad_pages;
  uint64_t lost_pages = 0;
  for (uint64_t index = 0; index < reader.page_count(); ++index) {
    const SnapshotPageKind kind = reader.kind(index);
    if (kind == SnapshotPageKind::kLost) ++lost_pages;
    if (kind != SnapshotPageKind::kData) continue;
    absl::StatusOr<uint32_t> actual = reader.ReadStoredPage(index, page.data());
    if (!actual.ok()) {
      bad_pages.push_back({index, 0, actual.status()});
    } else if (*actual != reader.checksum(index)) {
      bad_pages.push_back({index, *actual, absl::OkStatus()});
    }
  }

  if (options.json) {
    std::string json = absl::StrCat("{\"file\":", JsonString(options.file),
                                    ",\"data_pages\":", reader.data_page_count(),
                                    ",\"lost_pages\":", lost_pages, ",\"bad_pages\":[");
    for (size_t i = 0; i < bad_pages.size(); ++i) {
      const BadPage& bad = bad_pages[i];
      absl::StrAppend(&json, i == 0 ? "" : ",", "{\"index\":", bad.index,
                      ",\"expected_checksum\":", reader.checksum(bad.index));
      if (bad.read_error.ok()) {
        absl::StrAppend(&json, ",\"actual_checksum\":", bad.actual_checksum, "}");
      } else {
        absl::StrAppend(&json, ",\"error\":", JsonString(bad.read_error.message()), "}");
      }
    }
    absl::StrAppend(&json, "],\"ok\":", bad_pages.empty() ? "true" : "false", "}\n");
    std::fputs(json.c_str(), stdout);
  } else {
    for (const BadPage& bad : bad_pages) {
      if (bad.read_error.ok()) {
        absl::PrintF("page %d: checksum mismatch: expected %s, actual %s\n", bad.index,
                     FormatChecksum(reader.checksum(bad.index)),
                     FormatChecksum(bad.actual_checksum));
      } else {
        absl::PrintF("page %d: %s\n", bad.index, bad.read_error.message());
      }
    }
    std::string lost_note;
    if (lost_pages != 0) {
      lost_note = absl::StrCat("; ", lost_pages, lost_pages == 1 ? " page was" : " pages were",
                               " lost before the snapshot was taken");
    }
    if (bad_pages.empty()) {
      absl::PrintF("%s: all %d data pages match their checksums%s\n", options.file,
                   reader.data_page_count(), lost_note);
    } else {
      absl::PrintF("%s: %d of %d data pages are bad%s\n", options.file, bad_pages.size(),
                   reader.data_page_count(), lost_note);
    }
  }
  return bad_pages.empty() ? 0 : kExitDamaged;
}

int Pages(const SnapshotOptions& options, const SnapshotFileReader& reader) {
  if (options.from > reader.page_count()) {
    return Fail(
        options,
        absl::StrCat("--from ", options.from, ": the snapshot has ", reader.page_count(), " pages"),
        kExitUsage);
  }
  const uint64_t remaining = reader.page_count() - options.from;
  const uint64_t end = options.from + std::min(remaining, options.count.value_or(remaining));
  absl::PrintF("%10s  %-4s  %-10s  %s\n", "page", "kind", "checksum", "offset");
  for (uint64_t index = options.from; index < end; ++index) {
    const SnapshotPageKind kind = reader.kind(index);
    const bool is_data = kind == SnapshotPageKind::kData;
    absl::PrintF("%10d  %-4s  %-10s  %s\n", index, SnapshotPageKindName(kind),
                 is_data ? FormatChecksum(reader.checksum(index)) : "-",
                 is_data ? absl::StrCat(reader.DataOffset(index)) : "-");
  }
  return 0;
}

}  // namespace

int SnapshotCommand(std::span<char* const> args) {
  SnapshotOptions options;
  if (absl::Status status = ParseSnapshotOptions(args, options); !status.ok()) {
    return Fail(options, status.message(), kExitUsage);
  }
  if (options.help) {
    std::fputs(kSnapshotUsage, stdout);
    return 0;
  }
  absl::StatusOr<std::unique_ptr<SnapshotFileReader>> reader =
      SnapshotFileReader::Open(options.file);
  if (!reader.ok()) return Fail(options, reader.status().message(), kExitDamaged);
  switch (options.verb) {
    case Verb::kInfo:
      return Info(options, **reader);
    case Verb::kVerify:
      return Verify(options, **reader);
    case Verb::kPages:
      return Pages(options, **reader);
  }
  return kExitUsage;
}

}  // namespace faultline
