#include "device_read.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "bench_util.h"

namespace faultline_bench {
namespace {

constexpr size_t kWriteChunk = kMiB;
constexpr uint64_t kOffsetSeed = 20261126;

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// An anonymous mapping: page-aligned, as O_DIRECT needs, and released on every path.
class AlignedBuffer {
 public:
  explicit AlignedBuffer(size_t bytes) : bytes_(bytes) {
    void* address =
        mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    data_ = address == MAP_FAILED ? nullptr : static_cast<char*>(address);
  }
  ~AlignedBuffer() {
    if (data_ != nullptr) munmap(data_, bytes_);
  }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  char* data() const { return data_; }

 private:
  size_t bytes_;
  char* data_;
};

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

bool TimeDeviceReads(const std::string& dir, size_t file_bytes, size_t samples,
                     TimedTouches* result, std::string* why) {
  FileDescriptor file(open(dir.c_str(), O_TMPFILE | O_RDWR | O_DIRECT | O_CLOEXEC, 0600));
  if (file.get() < 0) {
    *why = Errno("O_TMPFILE|O_DIRECT file in " + dir);
    return false;
  }
  AlignedBuffer chunk(kWriteChunk);
  if (chunk.data() == nullptr) {
    *why = Errno("mmap");
    return false;
  }
  for (size_t offset = 0; offset < file_bytes; offset += kWriteChunk) {
    // Not zeros: nothing between here and the disk may recognise the data as a hole.
    std::memset(chunk.data(), static_cast<int>(offset / kWriteChunk) | 1, kWriteChunk);
    if (pwrite(file.get(), chunk.data(), kWriteChunk, static_cast<off_t>(offset)) !=
        static_cast<ssize_t>(kWriteChunk)) {
      *why = Errno("writing the device-read file in " + dir);
      return false;
    }
  }
  if (fdatasync(file.get()) != 0) {
    *why = Errno("fdatasync");
    return false;
  }
  std::mt19937_64 random(kOffsetSeed);
  std::uniform_int_distribution<size_t> page(0, file_bytes / kPage - 1);
  result->samples_ns.assign(samples, 0);
  uint64_t start = NowNs();
  for (size_t i = 0; i < samples; ++i) {
    off_t offset = static_cast<off_t>(page(random) * kPage);
    uint64_t before = NowNs();
    ssize_t n = pread(file.get(), chunk.data(), kPage, offset);
    uint64_t after = NowNs();
    if (n != static_cast<ssize_t>(kPage)) {
      *why = Errno("O_DIRECT pread");
      return false;
    }
    result->samples_ns[i] = static_cast<uint32_t>(after - before);
  }
  result->elapsed_ns = NowNs() - start;
  return true;
}

}  // namespace faultline_bench
