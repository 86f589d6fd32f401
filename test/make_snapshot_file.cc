// make_snapshot_file PATH PAGES: writes a snapshot file of PAGES pages for the command-line test
// (snapshot_cli_test.sh), whose kinds follow the page index so the test can predict them:
// index % 7 == 3 is lost, otherwise index % 5 == 1 is zero, and every other page is data.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "snapshot/snapshot_file.h"

int main(int argc, char** argv) {
  uint64_t page_count = 0;
  if (argc != 3 || !absl::SimpleAtoi(argv[2], &page_count)) {
    std::fputs("usage: make_snapshot_file PATH PAGES\n", stderr);
    return 2;
  }
  using faultline::SnapshotPageKind;
  constexpr uint32_t kPage = faultline::kSnapshotPageSize;
  auto writer = faultline::SnapshotFileWriter::Create(argv[1], page_count, kPage, 0x7f0000000000);
  absl::Status status = writer.status();
  std::vector<uint8_t> page(kPage);
  for (uint64_t index = 0; status.ok() && index < page_count; ++index) {
    if (index % 7 == 3) {
      status = (*writer)->AddPage(SnapshotPageKind::kLost, nullptr);
    } else if (index % 5 == 1) {
      status = (*writer)->AddPage(SnapshotPageKind::kZero, nullptr);
    } else {
      for (uint32_t offset = 0; offset < kPage; ++offset) {
        page[offset] = static_cast<uint8_t>(index * 31 + offset / 8);
      }
      status = (*writer)->AddPage(SnapshotPageKind::kData, page.data());
    }
  }
  if (status.ok()) status = (*writer)->Finish();
  if (!status.ok()) {
    std::fprintf(stderr, "make_snapshot_file: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
