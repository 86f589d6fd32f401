// userfaultfd ABI newer than the 6.1 kernel headers of Debian 12 (values from KERNEL.md, checked
// against the 6.18 kernel of the project's machines). One place, so the rest of the code uses
// names.
#ifndef FAULTLINE_LIB_KERNEL_UFFD_ABI_H_
#define FAULTLINE_LIB_KERNEL_UFFD_ABI_H_

#include <linux/types.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>

#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON (1 << 14)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1 << 16)

struct uffdio_move {
  __u64 dst;
  __u64 src;
  __u64 len;
  __u64 mode;
  __s64 move;
};
#define UFFDIO_MOVE_MODE_DONTWAKE ((__u64)1 << 0)
#define UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES ((__u64)1 << 1)
#define UFFDIO_MOVE _IOWR(UFFDIO, 0x05, struct uffdio_move)
#endif

#ifndef UFFDIO_POISON
struct uffdio_poison {
  struct uffdio_range range;
  __u64 mode;
  __s64 updated;
};
#define UFFDIO_POISON_MODE_DONTWAKE ((__u64)1 << 0)
#define UFFDIO_POISON _IOWR(UFFDIO, 0x08, struct uffdio_poison)
#endif

#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC 0xAA
#define USERFAULTFD_IOC_NEW _IO(USERFAULTFD_IOC, 0x00)
#endif

static_assert(sizeof(struct uffdio_move) == 40, "uffdio_move ABI");
static_assert(sizeof(struct uffdio_poison) == 32, "uffdio_poison ABI");
static_assert(UFFDIO_MOVE == 0xc028aa05, "UFFDIO_MOVE number");
static_assert(UFFDIO_POISON == 0xc020aa08, "UFFDIO_POISON number");

#endif  // FAULTLINE_LIB_KERNEL_UFFD_ABI_H_
