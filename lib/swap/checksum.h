// Per-slot checksums and page content tests used on the eviction and swap-in paths.
// Pure functions: no allocation, no syscalls, safe in the fault path.
#ifndef FAULTLINE_LIB_SWAP_CHECKSUM_H_
#define FAULTLINE_LIB_SWAP_CHECKSUM_H_

#include <cstddef>
#include <cstdint>

namespace faultline {

// CRC-32C (Castagnoli) of `len` bytes, hardware-accelerated (SSE4.2) when the CPU has it.
uint32_t Crc32c(const void* data, size_t len) noexcept;

// The checksum stored for a swap slot: Crc32c of the page, never 0 (0 marks "no checksum").
uint32_t PageChecksum(const void* page, size_t page_size) noexcept;

// True when every byte of the page is zero. `page` is 64-byte aligned.
bool IsZeroPage(const void* page, size_t page_size) noexcept;

// The two implementations behind Crc32c, exposed so tests can compare them. Crc32cHardware needs
// SSE4.2 (HasHardwareCrc32c()).
namespace internal {
uint32_t Crc32cHardware(const void* data, size_t len) noexcept;
uint32_t Crc32cSoftware(const void* data, size_t len) noexcept;
bool HasHardwareCrc32c() noexcept;
}  // namespace internal

}  // namespace faultline

#endif  // FAULTLINE_LIB_SWAP_CHECKSUM_H_
