// Shared by the preload workloads: a bijection of 64-bit values (splitmix64's finaliser), so
// distinct keys give distinct words and a pattern derived from it exposes any wrong byte.
#ifndef FAULTLINE_TEST_PRELOAD_MIX_H_
#define FAULTLINE_TEST_PRELOAD_MIX_H_

#include <stdint.h>

static inline uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

#endif  // FAULTLINE_TEST_PRELOAD_MIX_H_
