/** Sizes, flags and error numbers, named as in the kernel's headers. */

export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;
/** Pages per PMD on x86-64 (HPAGE_PMD_NR). */
export const HPAGE_PMD_NR = 512;
export const PMD_SIZE = PAGE_SIZE * HPAGE_PMD_NR;
/** GUP_PIN_COUNTING_BIAS: what one FOLL_PIN adds to a small folio's refcount. */
export const GUP_PIN_COUNTING_BIAS = 1024;

// vm_flags (include/linux/mm.h)
export const VM_READ = 0x1;
export const VM_WRITE = 0x2;
export const VM_EXEC = 0x4;
export const VM_SHARED = 0x8;
export const VM_MAYREAD = 0x10;
export const VM_MAYWRITE = 0x20;
export const VM_MAYSHARE = 0x80;
export const VM_LOCKED = 0x2000;
export const VM_DONTCOPY = 0x20000;
export const VM_HUGETLB = 0x400000;
export const VM_SOFTDIRTY = 0x8000000;
export const VM_HUGEPAGE = 0x20000000;
export const VM_NOHUGEPAGE = 0x40000000;

// FOLL_* (include/linux/mm_types.h in 6.2)
export const FOLL_WRITE = 0x01;
export const FOLL_GET = 0x04;
export const FOLL_FORCE = 0x10;
export const FOLL_LONGTERM = 0x100;
export const FOLL_PIN = 0x40000;
export const FOLL_FAST_ONLY = 0x80000;

export const FOLL_NAMES: ReadonlyArray<[number, string]> = [
  [FOLL_WRITE, 'FOLL_WRITE'],
  [FOLL_GET, 'FOLL_GET'],
  [FOLL_FORCE, 'FOLL_FORCE'],
  [FOLL_LONGTERM, 'FOLL_LONGTERM'],
  [FOLL_PIN, 'FOLL_PIN'],
  [FOLL_FAST_ONLY, 'FOLL_FAST_ONLY'],
];

// fault flags
export const FAULT_FLAG_WRITE = 0x1;
export const FAULT_FLAG_UNSHARE = 0x400;

// mmap / mprotect
export const PROT_NONE = 0x0;
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_NORESERVE = 0x4000;
export const MAP_HUGETLB = 0x40000;

// madvise
export const MADV_DONTNEED = 4;
export const MADV_DONTFORK = 10;
export const MADV_DOFORK = 11;
export const MADV_HUGEPAGE = 14;
export const MADV_NOHUGEPAGE = 15;
export const MADV_PAGEOUT = 21;
export const MADV_COLLAPSE = 25;

// mremap
export const MREMAP_MAYMOVE = 1;
export const MREMAP_FIXED = 2;

// errno
export const EPERM = 1;
export const ENOENT = 2;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const EBUSY = 16;
export const EINVAL = 22;
export const ENOSPC = 28;
export const EOPNOTSUPP = 95;

export const ERRNO_TEXT: Record<number, string> = {
  [EPERM]: 'Operation not permitted',
  [ENOENT]: 'No such file or directory',
  [EAGAIN]: 'Resource temporarily unavailable',
  [ENOMEM]: 'Cannot allocate memory',
  [EACCES]: 'Permission denied',
  [EFAULT]: 'Bad address',
  [EBUSY]: 'Device or resource busy',
  [EINVAL]: 'Invalid argument',
  [ENOSPC]: 'No space left on device',
  [EOPNOTSUPP]: 'Operation not supported',
};

export const ERRNO_NAME: Record<number, string> = {
  [EPERM]: 'EPERM',
  [ENOENT]: 'ENOENT',
  [EAGAIN]: 'EAGAIN',
  [ENOMEM]: 'ENOMEM',
  [EACCES]: 'EACCES',
  [EFAULT]: 'EFAULT',
  [EBUSY]: 'EBUSY',
  [EINVAL]: 'EINVAL',
  [ENOSPC]: 'ENOSPC',
  [EOPNOTSUPP]: 'EOPNOTSUPP',
};

/** The top of the model's user address space (16 TiB): every vpn stays below 2^32 (see FIRST_MMAP). */
export const TASK_SIZE = 2 ** 44;
