#include "swap/swap_file.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "util/errno_name.h"
#include "util/status.h"

namespace faultline {
namespace {

constexpr unsigned kStatxDioAlign = 0x2000;  // STATX_DIOALIGN, Linux 6.1
constexpr uint32_t kDefaultDioAlign = 4096;

// The kernel's struct statx (include/uapi/linux/stat.h) reduced to the fields used here, because
// glibc 2.36's struct statx predates stx_dio_mem_align and stx_dio_offset_align.
struct KernelStatx {
  uint32_t stx_mask;
  uint8_t unused_before_dio[0x98 - sizeof(uint32_t)];
  uint32_t stx_dio_mem_align;
  uint32_t stx_dio_offset_align;
  uint8_t unused_after_dio[0x100 - 0xa0];
};
static_assert(offsetof(KernelStatx, stx_dio_mem_align) == 0x98);
static_assert(offsetof(KernelStatx, stx_dio_offset_align) == 0x9c);
static_assert(sizeof(KernelStatx) == 0x100);

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

// A file opened by Open() that is not yet a SwapFile: closed unless released.
struct PendingFile {
  PendingFile(int fd, std::string description) : fd(fd), description(std::move(description)) {}
  ~PendingFile() {
    if (fd >= 0) close(fd);
  }
  PendingFile(const PendingFile&) = delete;
  PendingFile& operator=(const PendingFile&) = delete;

  int fd;
  std::string description;
};

std::string ParentOf(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

absl::Status NoDirectIo(const std::string& where) {
  return ErrnoError(EINVAL, where,
                    "the file system does not support O_DIRECT (e.g. tmpfs); choose a directory "
                    "on a disk");
}

// Why a file could not be created in (or as) `where`, which is known to exist or to have an
// existing parent.
absl::Status CreateError(int err, const std::string& where) {
  switch (err) {
    case EACCES:
    case EPERM:
      return ErrnoError(err, where, "not writable: cannot create a file there (permission denied)");
    case EROFS:
      return ErrnoError(err, where, "not writable: the file system is read-only");
    case ENOENT:
      // The directory exists, yet creating in it says ENOENT: a pseudo file system such as /proc.
      return ErrnoError(EACCES, where,
                        "not writable: the file system refuses new files (No such file or "
                        "directory); choose a directory on a disk");
    case EINVAL:
      return NoDirectIo(where);
    default:
      return ErrnoError(err, where);
  }
}

absl::StatusOr<int> CreateInDirectory(const std::string& directory, const std::string& where,
                                      std::string* description) {
  int fd = open(directory.c_str(), O_TMPFILE | O_RDWR | O_DIRECT | O_CLOEXEC, 0600);
  if (fd >= 0) {
    *description = "anonymous O_TMPFILE file in directory " + directory;
    return fd;
  }
  // EOPNOTSUPP: no O_TMPFILE in this file system; EISDIR: a kernel without O_TMPFILE; EINVAL:
  // perhaps no O_DIRECT, which the named file below tells apart.
  if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) return CreateError(errno, where);

  std::string name = directory + "/.faultline-swap-XXXXXX";
  const int named_fd = mkostemp(name.data(), O_CLOEXEC);
  if (named_fd < 0) return CreateError(errno, where);
  fd = open(name.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC);
  const int open_errno = errno;
  unlink(name.c_str());
  close(named_fd);
  if (fd < 0) return CreateError(open_errno, where);
  *description = "temporary file in directory " + directory + " (unlinked at once)";
  return fd;
}

absl::StatusOr<int> CreateNamed(const std::string& path, const std::string& where) {
  const int fd = open(path.c_str(), O_CREAT | O_EXCL | O_RDWR | O_DIRECT | O_CLOEXEC, 0600);
  if (fd >= 0) return fd;
  const int err = errno;
  if (err == EINVAL) {
    // The kernel creates the file before it finds that O_DIRECT is unsupported; O_EXCL makes it
    // ours to remove.
    unlink(path.c_str());
  }
  if (err == EEXIST) {
    return ErrnoError(err, where, "already exists; an existing file is never overwritten");
  }
  return CreateError(err, where);
}

// The alignment statx reports for O_DIRECT buffers (0 when the file cannot do O_DIRECT), or
// kDefaultDioAlign when the kernel does not report it. Fails when page-sized I/O at page-aligned
// offsets would be misaligned.
absl::StatusOr<uint32_t> DirectIoMemoryAlignment(int fd, uint32_t page_size,
                                                 const std::string& where) {
  KernelStatx stx{};
  if (syscall(SYS_statx, fd, "", AT_EMPTY_PATH, kStatxDioAlign, &stx) != 0 ||
      !(stx.stx_mask & kStatxDioAlign)) {
    return kDefaultDioAlign;
  }
  if (stx.stx_dio_mem_align == 0) return NoDirectIo(where);
  if (page_size % stx.stx_dio_offset_align != 0) {
    return ErrnoError(EINVAL, where,
                      "O_DIRECT here needs offsets aligned to " +
                          std::to_string(stx.stx_dio_offset_align) + " bytes, more than the " +
                          std::to_string(page_size) + "-byte page");
  }
  return stx.stx_dio_mem_align;
}

// Checks the file system and returns its free bytes.
absl::StatusOr<uint64_t> CheckFileSystem(int fd, const std::string& where) {
  struct statfs fs {};
  if (fstatfs(fd, &fs) != 0) return ErrnoError(errno, where);
  // tmpfs accepts O_DIRECT since Linux 6.6 but keeps the data in RAM: swap there frees nothing.
  if (fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC) {
    return ErrnoError(
        EINVAL, where,
        "the file system is tmpfs, which keeps files in RAM and has no real O_DIRECT; "
        "choose a directory on a disk");
  }
  return static_cast<uint64_t>(fs.f_bavail) * fs.f_bsize;
}

// Writes slot 1 with O_DIRECT and reads it back, so that a path that cannot do the I/O fails here
// rather than on the first eviction.
absl::Status ProbeDirectIo(int fd, uint32_t page_size, uint32_t alignment,
                           const std::string& where) {
  void* raw_out = nullptr;
  void* raw_in = nullptr;
  const size_t buffer_alignment = std::max<size_t>(alignment, kDefaultDioAlign);
  if (posix_memalign(&raw_out, buffer_alignment, page_size) != 0) return ErrnoError(ENOMEM, where);
  std::unique_ptr<void, FreeDeleter> out(raw_out);
  if (posix_memalign(&raw_in, buffer_alignment, page_size) != 0) return ErrnoError(ENOMEM, where);
  std::unique_ptr<void, FreeDeleter> in(raw_in);

  auto* pattern = static_cast<uint8_t*>(out.get());
  for (uint32_t i = 0; i < page_size; ++i) pattern[i] = static_cast<uint8_t>(i * 131 + 7);
  std::memset(in.get(), 0, page_size);

  const ssize_t written = pwrite(fd, out.get(), page_size, 0);
  if (written < 0) {
    const int err = errno;
    if (err == EINVAL) return NoDirectIo(where);
    return ErrnoError(err, where,
                      std::string("test write with O_DIRECT failed: ") + ErrnoDescription(err));
  }
  const ssize_t read_back = pread(fd, in.get(), page_size, 0);
  if (read_back < 0) {
    const int err = errno;
    return ErrnoError(err, where,
                      std::string("test read with O_DIRECT failed: ") + ErrnoDescription(err));
  }
  if (written != static_cast<ssize_t>(page_size) || read_back != static_cast<ssize_t>(page_size) ||
      std::memcmp(in.get(), out.get(), page_size) != 0) {
    return ErrnoError(EIO, where, "a test page written with O_DIRECT did not read back intact");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<SwapFile>> SwapFile::Open(const std::string& path,
                                                         uint64_t max_bytes, uint32_t page_size) {
  if (path.empty()) return ErrnoError(EINVAL, "swap path", "is empty");
  if (page_size < 512 || (page_size & (page_size - 1)) != 0) {
    return ErrnoError(EINVAL, "swap path " + path,
                      "page size " + std::to_string(page_size) + " is not a power of two >= 512");
  }
  if (max_bytes != SwapFile::kAutomaticSize && max_bytes < page_size) {
    return ErrnoError(EINVAL, "swap path " + path,
                      "size " + std::to_string(max_bytes) + " is less than one page (" +
                          std::to_string(page_size) + " bytes)");
  }

  std::string where;
  std::string description;
  absl::StatusOr<int> fd;
  struct stat st {};
  if (stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      where = "swap directory " + path;
      fd = CreateInDirectory(path, where, &description);
    } else {
      return ErrnoError(EEXIST, "swap file " + path,
                        "already exists; an existing file is never overwritten (give a directory "
                        "or a new file name)");
    }
  } else if (errno != ENOENT) {
    return ErrnoError(errno, "swap path " + path);
  } else if (path.back() == '/') {
    return ErrnoError(ENOENT, "swap directory " + path);
  } else {
    where = "swap file " + path;
    const std::string parent = ParentOf(path);
    struct stat parent_st {};
    if (stat(parent.c_str(), &parent_st) != 0) {
      const int err = errno;
      return ErrnoError(err, where, "its directory " + parent + ": " + ErrnoDescription(err));
    }
    if (!S_ISDIR(parent_st.st_mode)) {
      return ErrnoError(ENOTDIR, where, parent + " is not a directory");
    }
    fd = CreateNamed(path, where);
    // Unlinked at once, as in a directory: a process killed with SIGKILL leaves nothing behind.
    if (fd.ok()) unlink(path.c_str());
    description = "file " + path + " (unlinked at once)";
  }
  if (!fd.ok()) return fd.status();
  PendingFile file(*fd, std::move(description));

  absl::StatusOr<uint32_t> dio_mem_align = DirectIoMemoryAlignment(file.fd, page_size, where);
  if (!dio_mem_align.ok()) return dio_mem_align.status();
  absl::StatusOr<uint64_t> available = CheckFileSystem(file.fd, where);
  if (!available.ok()) return available.status();
  if (max_bytes == SwapFile::kAutomaticSize) {
    max_bytes = std::min(SwapFile::kAutomaticLimit, *available / 4 * 3);
  } else if (*available < max_bytes) {
    return ErrnoError(ENOSPC, where,
                      "no room: the swap file may grow to " + std::to_string(max_bytes) +
                          " bytes but only " + std::to_string(*available) + " are free");
  }
  const uint64_t slot_count = max_bytes / page_size;
  if (slot_count < 1) {
    return ErrnoError(ENOSPC, where, "no room for even one page of swap");
  }
  const uint64_t size = slot_count * page_size;
  if (ftruncate(file.fd, static_cast<off_t>(size)) != 0) {
    const int err = errno;
    return ErrnoError(
        err, where,
        "cannot size the file to " + std::to_string(size) + " bytes: " + ErrnoDescription(err));
  }
  if (absl::Status status = ProbeDirectIo(file.fd, page_size, *dio_mem_align, where);
      !status.ok()) {
    return status;
  }

  std::unique_ptr<SwapFile> swap_file(
      new SwapFile(file.fd, slot_count, page_size, *dio_mem_align, std::move(file.description)));
  file.fd = -1;
  return swap_file;
}

SwapFile::SwapFile(int fd, uint64_t slot_count, uint32_t page_size, uint32_t dio_mem_align,
                   std::string description)
    : fd_(fd),
      slot_count_(slot_count),
      page_size_(page_size),
      dio_mem_align_(dio_mem_align),
      description_(std::move(description)) {}

SwapFile::~SwapFile() { close(fd_); }

}  // namespace faultline
