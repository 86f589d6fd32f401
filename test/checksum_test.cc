#include "swap/checksum.h"

#include <array>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string_view>
#include <vector>

namespace faultline {
namespace {

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
using AlignedPage = std::unique_ptr<uint8_t, FreeDeleter>;

AlignedPage MakeZeroPage(size_t size) {
  const size_t rounded = (size + 4095) / 4096 * 4096;  // aligned_alloc wants a multiple
  AlignedPage page(static_cast<uint8_t*>(std::aligned_alloc(4096, rounded)));
  std::memset(page.get(), 0, size);
  return page;
}

uint32_t CrcOfText(std::string_view text) { return Crc32c(text.data(), text.size()); }

// Chooses the last four bytes of `data` so that its Crc32c is 0. The CRC is affine in those bytes,
// so this solves a 32x32 linear system over GF(2).
void ForceCrcToZero(std::vector<uint8_t>& data) {
  uint8_t* tail = data.data() + data.size() - 4;
  auto crc_with_tail = [&](uint32_t value) {
    std::memcpy(tail, &value, 4);
    return Crc32c(data.data(), data.size());
  };
  const uint32_t base = crc_with_tail(0);
  // Augmented rows: bit i of column j says tail bit j flips crc bit i; bit 32 is the target.
  std::array<uint64_t, 32> rows{};
  for (int j = 0; j < 32; ++j) {
    uint32_t column = crc_with_tail(1u << j) ^ base;
    for (int i = 0; i < 32; ++i) rows[i] |= static_cast<uint64_t>((column >> i) & 1) << j;
  }
  for (int i = 0; i < 32; ++i) rows[i] |= static_cast<uint64_t>((base >> i) & 1) << 32;
  for (int col = 0; col < 32; ++col) {
    int pivot = col;
    while (pivot < 32 && !((rows[pivot] >> col) & 1)) ++pivot;
    REQUIRE(pivot < 32);
    std::swap(rows[col], rows[pivot]);
    for (int r = 0; r < 32; ++r) {
      if (r != col && ((rows[r] >> col) & 1)) rows[r] ^= rows[col];
    }
  }
  uint32_t solution = 0;
  for (int i = 0; i < 32; ++i) solution |= static_cast<uint32_t>((rows[i] >> 32) & 1) << i;
  REQUIRE(crc_with_tail(solution) == 0);
}

TEST_CASE("Crc32c matches the published CRC-32C check values") {
  CHECK(CrcOfText("") == 0x00000000u);
  CHECK(CrcOfText("a") == 0xC1D04330u);
  CHECK(CrcOfText("123456789") == 0xE3069283u);
  CHECK(CrcOfText("The quick brown fox jumps over the lazy dog") == 0x22620404u);

  // RFC 3720 (iSCSI), appendix B.4.
  std::array<uint8_t, 32> bytes{};
  CHECK(Crc32c(bytes.data(), bytes.size()) == 0x8A9136AAu);
  bytes.fill(0xFF);
  CHECK(Crc32c(bytes.data(), bytes.size()) == 0x62A8AB43u);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i);
  CHECK(Crc32c(bytes.data(), bytes.size()) == 0x46DD794Eu);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(31 - i);
  CHECK(Crc32c(bytes.data(), bytes.size()) == 0x113FDB5Cu);
}

TEST_CASE("hardware and software CRC-32C agree on every length and alignment") {
  if (!internal::HasHardwareCrc32c()) {
    WARN("CPU without SSE4.2: only the software CRC-32C is checked");
    return;
  }
  std::mt19937_64 random(12345);
  std::vector<uint8_t> buffer(3 * 8192 + 64);
  for (auto& byte : buffer) byte = static_cast<uint8_t>(random());

  const size_t length = GENERATE(0, 1, 7, 8, 9, 63, 64, 255, 256, 767, 768, 769, 1024, 2047, 4080,
                                 4095, 4096, 4097, 4111, 8192, 12288, 3 * 8192);
  const size_t offset = GENERATE(0, 1, 3, 8, 13, 64);
  const uint8_t* data = buffer.data() + offset;
  CAPTURE(length, offset);
  CHECK(internal::Crc32cHardware(data, length) == internal::Crc32cSoftware(data, length));
  CHECK(Crc32c(data, length) == internal::Crc32cSoftware(data, length));
}

TEST_CASE("hardware and software CRC-32C agree on random lengths") {
  if (!internal::HasHardwareCrc32c()) return;
  std::mt19937_64 random(777);
  std::vector<uint8_t> buffer(20000);
  for (int round = 0; round < 2000; ++round) {
    const size_t offset = random() % 64;
    const size_t length = random() % (buffer.size() - offset);
    for (size_t i = offset; i < offset + length; ++i) buffer[i] = static_cast<uint8_t>(random());
    CAPTURE(length, offset);
    REQUIRE(internal::Crc32cHardware(buffer.data() + offset, length) ==
            internal::Crc32cSoftware(buffer.data() + offset, length));
  }
}

TEST_CASE("PageChecksum is the CRC, except that it is never 0") {
  std::vector<uint8_t> page(4096);
  std::mt19937_64 random(99);
  for (auto& byte : page) byte = static_cast<uint8_t>(random());
  CHECK(PageChecksum(page.data(), page.size()) == Crc32c(page.data(), page.size()));

  ForceCrcToZero(page);
  CHECK(Crc32c(page.data(), page.size()) == 0);
  CHECK(PageChecksum(page.data(), page.size()) == 1);
}

TEST_CASE("PageChecksum notices a single flipped bit anywhere in the page") {
  std::vector<uint8_t> page(4096, 0x5A);
  const uint32_t original = PageChecksum(page.data(), page.size());
  for (size_t position : {size_t{0}, size_t{1}, size_t{1359}, size_t{1360}, size_t{2720},
                          size_t{4079}, size_t{4080}, size_t{4095}}) {
    page[position] ^= 0x10;
    CHECK(PageChecksum(page.data(), page.size()) != original);
    page[position] ^= 0x10;
  }
}

TEST_CASE("IsZeroPage finds a nonzero byte at every position") {
  const size_t page_size = GENERATE(size_t{4096}, size_t{16384}, size_t{100});
  AlignedPage page = MakeZeroPage(page_size);
  REQUIRE(IsZeroPage(page.get(), page_size));

  for (size_t position = 0; position < page_size; ++position) {
    for (uint8_t value : {uint8_t{0x01}, uint8_t{0x80}}) {
      page.get()[position] = value;
      if (IsZeroPage(page.get(), page_size))
        FAIL("missed byte " << position << " in page of " << page_size);
      page.get()[position] = 0;
    }
  }
  CHECK(IsZeroPage(page.get(), page_size));
}

TEST_CASE("IsZeroPage looks only at the given length") {
  AlignedPage page = MakeZeroPage(8192);
  page.get()[4096] = 1;
  CHECK(IsZeroPage(page.get(), 4096));
  CHECK_FALSE(IsZeroPage(page.get(), 8192));
}

}  // namespace
}  // namespace faultline
