#include "swap/checksum.h"

#include <emmintrin.h>
#include <nmmintrin.h>

#include <array>
#include <cstring>

namespace faultline {
namespace {

constexpr uint32_t kCastagnoliReflected = 0x82F63B78;

// The hardware path runs three independent CRC streams over three adjacent lanes, because the
// crc32 instruction has a latency of three cycles but a throughput of one per cycle; the lane
// CRCs are then joined by shifting them over the bytes that follow (a table lookup per byte).
// kLongLane is chosen so that one block covers a 4 KiB page (3 * 1360 = 4080, 16 bytes left).
constexpr size_t kLongLane = 1360;
constexpr size_t kShortLane = 256;

// a * b modulo the CRC polynomial, both in the reflected bit order.
constexpr uint32_t MultiplyModPoly(uint32_t a, uint32_t b) {
  uint32_t product = 0;
  for (uint32_t bit = 1u << 31; bit != 0; bit >>= 1) {
    if (a & bit) product ^= b;
    b = (b & 1) ? (b >> 1) ^ kCastagnoliReflected : b >> 1;
  }
  return product;
}

// x^(8 * bytes) modulo the CRC polynomial: multiplying a CRC register by it appends `bytes` zeros.
constexpr uint32_t AppendZerosOperator(size_t bytes) {
  uint32_t result = 1u << 31;  // x^0
  uint32_t power = 1u << 23;   // x^8, one zero byte
  for (; bytes != 0; bytes >>= 1) {
    if (bytes & 1) result = MultiplyModPoly(power, result);
    power = MultiplyModPoly(power, power);
  }
  return result;
}

using ShiftTable = std::array<std::array<uint32_t, 256>, 4>;

// The operator for `bytes` zeros applied to every value of each byte of a CRC register, so that
// the shift of a whole register is four lookups.
constexpr ShiftTable MakeShiftTable(size_t bytes) {
  const uint32_t op = AppendZerosOperator(bytes);
  ShiftTable table{};
  for (uint32_t byte_index = 0; byte_index < 4; ++byte_index) {
    for (uint32_t value = 0; value < 256; ++value) {
      table[byte_index][value] = MultiplyModPoly(op, value << (8 * byte_index));
    }
  }
  return table;
}

constexpr ShiftTable kLongShift = MakeShiftTable(kLongLane);
constexpr ShiftTable kShortShift = MakeShiftTable(kShortLane);

constexpr std::array<uint32_t, 256> MakeByteTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t value = 0; value < 256; ++value) {
    uint32_t crc = value;
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 1) ? (crc >> 1) ^ kCastagnoliReflected : crc >> 1;
    }
    table[value] = crc;
  }
  return table;
}

constexpr std::array<uint32_t, 256> kByteTable = MakeByteTable();

inline uint32_t Shift(const ShiftTable& table, uint32_t crc) {
  return table[0][crc & 0xff] ^ table[1][(crc >> 8) & 0xff] ^ table[2][(crc >> 16) & 0xff] ^
         table[3][crc >> 24];
}

inline uint64_t Load64(const uint8_t* p) {
  uint64_t value;
  std::memcpy(&value, p, sizeof(value));
  return value;
}

// Runs `crc` over three lanes of `lane` bytes each starting at `p`.
inline uint32_t ThreeLanes(uint32_t crc, const uint8_t* p, size_t lane, const ShiftTable& shift) {
  uint64_t crc0 = crc;
  uint64_t crc1 = 0;
  uint64_t crc2 = 0;
  for (size_t i = 0; i < lane; i += 8) {
    crc0 = _mm_crc32_u64(crc0, Load64(p + i));
    crc1 = _mm_crc32_u64(crc1, Load64(p + lane + i));
    crc2 = _mm_crc32_u64(crc2, Load64(p + 2 * lane + i));
  }
  uint32_t joined = Shift(shift, static_cast<uint32_t>(crc0)) ^ static_cast<uint32_t>(crc1);
  return Shift(shift, joined) ^ static_cast<uint32_t>(crc2);
}

uint32_t HardwareCrcRegister(uint32_t crc, const uint8_t* p, size_t len) {
  for (; len >= 3 * kLongLane; p += 3 * kLongLane, len -= 3 * kLongLane) {
    crc = ThreeLanes(crc, p, kLongLane, kLongShift);
  }
  for (; len >= 3 * kShortLane; p += 3 * kShortLane, len -= 3 * kShortLane) {
    crc = ThreeLanes(crc, p, kShortLane, kShortShift);
  }
  uint64_t wide = crc;
  for (; len >= 8; p += 8, len -= 8) wide = _mm_crc32_u64(wide, Load64(p));
  crc = static_cast<uint32_t>(wide);
  for (; len > 0; ++p, --len) crc = _mm_crc32_u8(crc, *p);
  return crc;
}

uint32_t SoftwareCrcRegister(uint32_t crc, const uint8_t* p, size_t len) {
  for (; len > 0; ++p, --len) crc = kByteTable[(crc ^ *p) & 0xff] ^ (crc >> 8);
  return crc;
}

// Zero-initialised before dynamic initialisation, so a call from another translation unit's
// static initialiser safely takes the software path.
const bool kHardwareCrc = [] {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2") != 0;
}();

}  // namespace

namespace internal {

uint32_t Crc32cHardware(const void* data, size_t len) noexcept {
  return ~HardwareCrcRegister(~0u, static_cast<const uint8_t*>(data), len);
}

uint32_t Crc32cSoftware(const void* data, size_t len) noexcept {
  return ~SoftwareCrcRegister(~0u, static_cast<const uint8_t*>(data), len);
}

bool HasHardwareCrc32c() noexcept { return kHardwareCrc; }

}  // namespace internal

uint32_t Crc32c(const void* data, size_t len) noexcept {
  return kHardwareCrc ? internal::Crc32cHardware(data, len) : internal::Crc32cSoftware(data, len);
}

uint32_t PageChecksum(const void* page, size_t page_size) noexcept {
  uint32_t crc = Crc32c(page, page_size);
  return crc == 0 ? 1 : crc;
}

bool IsZeroPage(const void* page, size_t page_size) noexcept {
  const auto* blocks = static_cast<const __m128i*>(page);
  const size_t whole_blocks = page_size / 64;
  for (size_t i = 0; i < whole_blocks; ++i) {
    const __m128i* block = blocks + 4 * i;
    __m128i any = _mm_or_si128(_mm_or_si128(_mm_load_si128(block), _mm_load_si128(block + 1)),
                               _mm_or_si128(_mm_load_si128(block + 2), _mm_load_si128(block + 3)));
    if (_mm_movemask_epi8(_mm_cmpeq_epi8(any, _mm_setzero_si128())) != 0xFFFF) return false;
  }
  const auto* bytes = static_cast<const uint8_t*>(page);
  for (size_t offset = whole_blocks * 64; offset < page_size; ++offset) {
    if (bytes[offset] != 0) return false;
  }
  return true;
}

}  // namespace faultline
