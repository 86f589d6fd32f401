// The environment of a program run under faultline: every accepted spelling, and a one-line error
// naming the variable for everything else.
#include "preload/env_config.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <map>
#include <string>

using faultline::ParseSize;
using faultline::PreloadConfig;
using faultline::ReadPreloadConfig;

namespace {

constexpr uint64_t kGiB = uint64_t{1} << 30;
std::map<std::string, std::string> g_env;

const char* FakeGetenv(const char* name) {
  auto it = g_env.find(name);
  return it == g_env.end() ? nullptr : it->second.c_str();
}

}  // namespace

TEST_CASE("sizes: bytes and binary suffixes", "[env]") {
  uint64_t bytes = 0;
  CHECK((ParseSize("4096", 0, &bytes) && bytes == 4096));
  CHECK((ParseSize("4096B", 0, &bytes) && bytes == 4096));
  CHECK((ParseSize("64k", 0, &bytes) && bytes == 64 * 1024));
  CHECK((ParseSize("128M", 0, &bytes) && bytes == 128u << 20));
  CHECK((ParseSize("128MiB", 0, &bytes) && bytes == 128u << 20));
  CHECK((ParseSize("2g", 0, &bytes) && bytes == 2 * kGiB));
  CHECK((ParseSize("1TB", 0, &bytes) && bytes == uint64_t{1} << 40));
}

TEST_CASE("sizes: percentages of RAM", "[env]") {
  uint64_t bytes = 0;
  CHECK((ParseSize("25%", 8 * kGiB, &bytes) && bytes == 2 * kGiB));
  CHECK((ParseSize("100%", 8 * kGiB, &bytes) && bytes == 8 * kGiB));
  CHECK((ParseSize("12.5%", 8 * kGiB, &bytes) && bytes == kGiB));
  CHECK_FALSE(ParseSize("101%", 8 * kGiB, &bytes));
  CHECK_FALSE(ParseSize("100.1%", 8 * kGiB, &bytes));
  CHECK_FALSE(ParseSize("25%", 0, &bytes));  // no percentages where RAM is not the reference
  CHECK_FALSE(ParseSize("0%", 8 * kGiB, &bytes));
  CHECK_FALSE(ParseSize("%", 8 * kGiB, &bytes));
}

TEST_CASE("sizes: everything else is refused and changes nothing", "[env]") {
  uint64_t bytes = 7;
  for (const char* bad : {"", "0", "0M", "-1", "1.5G", "12Q", "M", " 1M", "1M ", "1MM", "1Mi B",
                          "18446744073709551616", "17179869184G", "1e9"}) {
    INFO(bad);
    CHECK_FALSE(ParseSize(bad, 8 * kGiB, &bytes));
    CHECK(bytes == 7);
  }
}

TEST_CASE("the environment: defaults, and errors that name the variable", "[env]") {
  char error[256];
  PreloadConfig config;
  g_env = {};
  CHECK_FALSE(ReadPreloadConfig(FakeGetenv, 8 * kGiB, &config, error, sizeof(error)));
  CHECK(std::string(error).rfind("FAULTLINE_LIMIT is not set", 0) == 0);

  g_env = {{"FAULTLINE_LIMIT", "128M"}};
  REQUIRE(ReadPreloadConfig(FakeGetenv, 8 * kGiB, &config, error, sizeof(error)));
  CHECK(config.limit_bytes == 128u << 20);
  CHECK(config.min_region_bytes == faultline::kDefaultMinRegionBytes);
  CHECK(config.swap_dir == nullptr);
  CHECK(config.stats_path == nullptr);

  g_env = {{"FAULTLINE_LIMIT", "10%"},
           {"FAULTLINE_MIN_REGION", "256K"},
           {"FAULTLINE_SWAP_DIR", "/var/tmp"},
           {"FAULTLINE_STATS", "/tmp/stats.json"}};
  REQUIRE(ReadPreloadConfig(FakeGetenv, 10 * kGiB, &config, error, sizeof(error)));
  CHECK(config.limit_bytes == kGiB);
  CHECK(config.min_region_bytes == 256 * 1024);
  CHECK(std::strcmp(config.swap_dir, "/var/tmp") == 0);
  CHECK(std::strcmp(config.stats_path, "/tmp/stats.json") == 0);

  struct Case {
    std::map<std::string, std::string> env;
    const char* starts_with;
  };
  for (const Case& c : {
           Case{{{"FAULTLINE_LIMIT", "lots"}}, "FAULTLINE_LIMIT=lots is not a size"},
           Case{{{"FAULTLINE_LIMIT", "1G"}, {"FAULTLINE_MIN_REGION", "x"}},
                "FAULTLINE_MIN_REGION=x is not a size"},
           Case{{{"FAULTLINE_LIMIT", "1G"}, {"FAULTLINE_SWAP_DIR", "/nonexistent/dir"}},
                "FAULTLINE_SWAP_DIR=/nonexistent/dir: No such file or directory"},
           Case{{{"FAULTLINE_LIMIT", "1G"}, {"FAULTLINE_SWAP_DIR", "/etc/passwd"}},
                "FAULTLINE_SWAP_DIR=/etc/passwd is not a directory"},
       }) {
    g_env = c.env;
    PreloadConfig untouched;
    untouched.limit_bytes = 42;
    CHECK_FALSE(ReadPreloadConfig(FakeGetenv, 8 * kGiB, &untouched, error, sizeof(error)));
    INFO(error);
    CHECK(std::string(error).rfind(c.starts_with, 0) == 0);
    CHECK(std::strchr(error, '\n') == nullptr);
    CHECK(untouched.limit_bytes == 42);
  }
}
