#include "util/proc_memory.h"

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

namespace faultline {

ProcMemory ReadProcMemory() {
  ProcMemory m;
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    unsigned long long kb;
    if (std::sscanf(line.c_str(), "VmSize: %llu kB", &kb) == 1) m.vsz_bytes = kb * 1024;
    if (std::sscanf(line.c_str(), "VmRSS: %llu kB", &kb) == 1) m.rss_bytes = kb * 1024;
  }
  std::ifstream stat("/proc/self/stat");
  std::string all((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  size_t after_name = all.rfind(')');
  if (after_name == std::string::npos) return m;
  // Fields after the command name (which may contain spaces): state is field 3, minflt 10,
  // majflt 12 (proc(5)).
  std::istringstream rest(all.substr(after_name + 2));
  std::string field;
  for (int i = 3; i <= 12 && rest >> field; ++i) {
    if (i == 10) m.minor_faults = std::strtoull(field.c_str(), nullptr, 10);
    if (i == 12) m.major_faults = std::strtoull(field.c_str(), nullptr, 10);
  }
  return m;
}

int64_t SmapsRssOf(const void* start) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  uintptr_t wanted = reinterpret_cast<uintptr_t>(start);
  bool in_mapping = false;
  while (std::getline(smaps, line)) {
    uintptr_t lo, hi;
    // Mapping header lines start "lo-hi perms ..."; attribute lines start "Name:".
    if (std::sscanf(line.c_str(), "%" SCNxPTR "-%" SCNxPTR " ", &lo, &hi) == 2 &&
        line.find(':') > line.find(' ')) {
      in_mapping = lo == wanted;
      continue;
    }
    if (in_mapping && line.rfind("Rss:", 0) == 0) {
      long long kb = 0;
      std::sscanf(line.c_str(), "Rss: %lld kB", &kb);
      return kb * 1024;
    }
  }
  return -1;
}

}  // namespace faultline
