/*
 * cowhost: executes cowlab scenario operations with real system calls and reports what the kernel
 * shows after each one (/proc/PID/pagemap, /proc/kpagecount, /proc/kpageflags, /proc/PID/status).
 *
 * Process layout
 *   controller  this program's first process. Reads one command per line on stdin, answers one
 *               JSON line per command on stdout. Touches no scenario memory itself; observations
 *               (pagemap, status, smaps, meminfo) are read here from /proc of the target process.
 *   workers     the scenario's processes. Worker 0 is forked at start; `fork` makes the addressed
 *               worker clone itself (a real fork: copy of its address space), with CLONE_PARENT so
 *               every worker is a direct child of the controller (PR_SET_PDEATHSIG then ties all
 *               of them to the controller, and the controller reaps them). Each worker runs a
 *               command loop on its own AF_UNIX stream socket to the controller.
 *
 * Protocol (see docs/host.md): request  "SEQ CMD key=value ...\n"
 *                              reply    {"seq":SEQ,"ok":true,...} or {"seq":SEQ,"ok":false,"errno":N,"code":"ENAME","error":"..."}
 * Numbers accept decimal or 0x-hex. Memory is addressed by the address mmap returned.
 *
 * Safety: every worker dies with the controller (PDEATHSIG SIGKILL, socket EOF); the controller
 * kills and reaps all workers on stdin EOF, `quit`, SIGTERM/SIGINT/SIGHUP, and dies with its own
 * parent (PDEATHSIG). Non-hugetlb mappings are bounded in total over all processes (--mem-limit,
 * default 1 GiB; fork counts the parent's mappings again); hugetlb memory is bounded by the pool
 * the caller reserved. Pipes are non-blocking, so vmsplice and pipe reads never hang.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define COWHOST_VERSION 1
#define MAX_PROCS 16
#define MAX_ARGS 24
#define MAX_PAGEMAP_PAGES 8192
#define PAGE 4096UL

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MADV_COLD
#define MADV_COLD 20
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif
#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT 26
#endif
#ifndef F_SETPIPE_SZ
#define F_SETPIPE_SZ 1031
#endif

/*
 * gup_test (mm/gup_test.c, CONFIG_GUP_TEST): ioctl type 'g'. Long-term pin test: number 7 starts
 * (writes a struct of address u64, size u64, flags u32; flag 1 = pin for write, 2 = use GUP-fast),
 * 8 stops (no argument), 9 copies the pinned pages' content to the buffer whose address is the u64
 * the argument points to.
 */
struct cowhost_pin_longterm {
  uint64_t addr;
  uint64_t size;
  uint32_t flags;
};
#define GUPT_PIN_START _IOW('g', 7, struct cowhost_pin_longterm)
#define GUPT_PIN_STOP _IO('g', 8)
#define GUPT_PIN_READ _IOW('g', 9, uint64_t)
#define GUPT_FLAG_WRITE 1
#define GUPT_FLAG_FAST 2
#define GUP_TEST_PATH "/sys/kernel/debug/gup_test"

/* ---------------------------------------------------------------- output buffer */

typedef struct {
  char *p;
  size_t n, cap;
} sbuf;

static void sb_grow(sbuf *b, size_t add) {
  if (b->n + add + 1 <= b->cap) return;
  size_t cap = b->cap ? b->cap : 1024;
  while (cap < b->n + add + 1) cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p) _exit(99);
  b->p = p;
  b->cap = cap;
}

static void sb_put(sbuf *b, const char *s, size_t len) {
  sb_grow(b, len);
  memcpy(b->p + b->n, s, len);
  b->n += len;
  b->p[b->n] = 0;
}

static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

__attribute__((format(printf, 2, 3))) static void sb_printf(sbuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char tmp[512];
  int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (k < 0) return;
  if ((size_t)k < sizeof tmp) {
    sb_put(b, tmp, (size_t)k);
    return;
  }
  sb_grow(b, (size_t)k);
  va_start(ap, fmt);
  vsnprintf(b->p + b->n, (size_t)k + 1, fmt, ap);
  va_end(ap);
  b->n += (size_t)k;
}

static void sb_json_str(sbuf *b, const char *s) {
  sb_put(b, "\"", 1);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      sb_put(b, e, 2);
    } else if (c < 0x20) {
      sb_printf(b, "\\u%04x", c);
    } else {
      sb_put(b, (const char *)&c, 1);
    }
  }
  sb_put(b, "\"", 1);
}

/* ---------------------------------------------------------------- errors */

static const char *errname(int e) {
  switch (e) {
  case EPERM: return "EPERM";
  case ENOENT: return "ENOENT";
  case ESRCH: return "ESRCH";
  case EINTR: return "EINTR";
  case EIO: return "EIO";
  case E2BIG: return "E2BIG";
  case EBADF: return "EBADF";
  case EAGAIN: return "EAGAIN";
  case ENOMEM: return "ENOMEM";
  case EACCES: return "EACCES";
  case EFAULT: return "EFAULT";
  case EBUSY: return "EBUSY";
  case EEXIST: return "EEXIST";
  case ENODEV: return "ENODEV";
  case EINVAL: return "EINVAL";
  case ENFILE: return "ENFILE";
  case EMFILE: return "EMFILE";
  case ENOTTY: return "ENOTTY";
  case EFBIG: return "EFBIG";
  case ENOSPC: return "ENOSPC";
  case ESPIPE: return "ESPIPE";
  case EPIPE: return "EPIPE";
  case ERANGE: return "ERANGE";
  case ENOSYS: return "ENOSYS";
  case EOPNOTSUPP: return "EOPNOTSUPP";
  case ETIMEDOUT: return "ETIMEDOUT";
  case ECHILD: return "ECHILD";
  default: return "E?";
  }
}

static void reply_err(sbuf *b, int e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void reply_err(sbuf *b, int e, const char *fmt, ...) {
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  b->n = 0;
  sb_printf(b, "{\"ok\":false,\"errno\":%d,\"code\":\"%s\",\"error\":", e, errname(e));
  char full[600];
  snprintf(full, sizeof full, "%s: %s", msg, strerror(e));
  sb_json_str(b, full);
  sb_puts(b, "}");
}

/* ---------------------------------------------------------------- argument parsing */

typedef struct {
  char *cmd;
  int n;
  char *k[MAX_ARGS];
  char *v[MAX_ARGS];
} args_t;

/* Splits "cmd k=v k=v" in place. Returns -1 on a malformed token. */
static int parse_args(char *line, args_t *a) {
  a->cmd = NULL;
  a->n = 0;
  char *save = NULL;
  for (char *t = strtok_r(line, " \t\r\n", &save); t; t = strtok_r(NULL, " \t\r\n", &save)) {
    if (!a->cmd) {
      a->cmd = t;
      continue;
    }
    char *eq = strchr(t, '=');
    if (!eq || a->n >= MAX_ARGS) return -1;
    *eq = 0;
    a->k[a->n] = t;
    a->v[a->n] = eq + 1;
    a->n++;
  }
  return a->cmd ? 0 : -1;
}

static const char *arg_str(const args_t *a, const char *key, const char *def) {
  for (int i = 0; i < a->n; i++)
    if (!strcmp(a->k[i], key)) return a->v[i];
  return def;
}

/* Parses a number argument; *bad is set when present but malformed. */
static long long arg_num(const args_t *a, const char *key, long long def, int *bad) {
  const char *s = arg_str(a, key, NULL);
  if (!s) return def;
  char *end = NULL;
  errno = 0;
  long long x;
  if (s[0] == '-') x = strtoll(s, &end, 0);
  else x = (long long)strtoull(s, &end, 0);
  if (errno || !end || *end || end == s) {
    *bad = 1;
    return def;
  }
  return x;
}

static int has_arg(const args_t *a, const char *key) { return arg_str(a, key, NULL) != NULL; }

/* ---------------------------------------------------------------- small I/O helpers */

static int write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t k = write(fd, p, n);
    if (k < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += k;
    n -= (size_t)k;
  }
  return 0;
}

/* Line reader over a stream fd; received SCM_RIGHTS fds are stored in *passed_fd. */
typedef struct {
  int fd;
  char *buf;
  size_t n, cap;
} lreader;

static char *read_line(lreader *r, int *passed_fd) {
  for (;;) {
    char *nl = r->n ? memchr(r->buf, '\n', r->n) : NULL;
    if (nl) {
      size_t len = (size_t)(nl - r->buf) + 1;
      char *line = malloc(len);
      if (!line) _exit(99);
      memcpy(line, r->buf, len - 1);
      line[len - 1] = 0;
      memmove(r->buf, r->buf + len, r->n - len);
      r->n -= len;
      return line;
    }
    if (r->n + 4096 > r->cap) {
      r->cap = r->cap ? r->cap * 2 : 65536;
      r->buf = realloc(r->buf, r->cap);
      if (!r->buf) _exit(99);
    }
    struct iovec iov = {r->buf + r->n, r->cap - r->n};
    union {
      char b[CMSG_SPACE(sizeof(int))];
      struct cmsghdr align;
    } cm;
    struct msghdr mh = {0};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (passed_fd) {
      mh.msg_control = cm.b;
      mh.msg_controllen = sizeof cm.b;
    }
    ssize_t k;
    if (passed_fd) k = recvmsg(r->fd, &mh, MSG_CMSG_CLOEXEC);
    else k = read(r->fd, iov.iov_base, iov.iov_len);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return NULL;
    if (passed_fd && mh.msg_controllen) {
      struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
      if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) memcpy(passed_fd, CMSG_DATA(c), sizeof(int));
    }
    r->n += (size_t)k;
  }
}

static char *read_file_str(const char *path, size_t max) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  char *buf = malloc(max + 1);
  if (!buf) _exit(99);
  size_t n = 0;
  while (n < max) {
    ssize_t k = read(fd, buf + n, max - n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    n += (size_t)k;
  }
  buf[n] = 0;
  close(fd);
  return buf;
}

/* ---------------------------------------------------------------- parsing names */

static int parse_prot(const char *s, int *prot) {
  if (!strcmp(s, "none")) {
    *prot = PROT_NONE;
    return 0;
  }
  int p = 0;
  for (; *s; s++) {
    if (*s == 'r') p |= PROT_READ;
    else if (*s == 'w') p |= PROT_WRITE;
    else if (*s == 'x') p |= PROT_EXEC;
    else return -1;
  }
  *prot = p;
  return 0;
}

static const struct {
  const char *name;
  int advice;
} advices[] = {
    {"normal", MADV_NORMAL},
    {"dontneed", MADV_DONTNEED},
    {"free", MADV_FREE},
    {"remove", MADV_REMOVE},
    {"dontfork", MADV_DONTFORK},
    {"dofork", MADV_DOFORK},
    {"mergeable", MADV_MERGEABLE},
    {"unmergeable", MADV_UNMERGEABLE},
    {"hugepage", MADV_HUGEPAGE},
    {"nohugepage", MADV_NOHUGEPAGE},
    {"dontdump", MADV_DONTDUMP},
    {"wipeonfork", MADV_WIPEONFORK},
    {"keeponfork", MADV_KEEPONFORK},
    {"cold", MADV_COLD},
    {"pageout", MADV_PAGEOUT},
    {"populate_read", MADV_POPULATE_READ},
    {"populate_write", MADV_POPULATE_WRITE},
    {"collapse", MADV_COLLAPSE},
};

static int parse_advice(const char *s) {
  for (size_t i = 0; i < sizeof advices / sizeof advices[0]; i++)
    if (!strcmp(advices[i].name, s)) return advices[i].advice;
  char *end;
  long x = strtol(s, &end, 0);
  return (*s && !*end) ? (int)x : -1;
}

static int log2_u64(uint64_t x) {
  int k = 0;
  while (x > 1) {
    x >>= 1;
    k++;
  }
  return k;
}

/* ---------------------------------------------------------------- worker */

static int w_sock = -1;
static pid_t ctl_pid;
static sigjmp_buf w_jmp;
static volatile sig_atomic_t w_guard;
static volatile uintptr_t w_fault_addr;
static volatile int w_fault_sig;

static int ring_fd = -1;
static void *ring_sq, *ring_cq, *ring_sqes;
static size_t ring_sq_sz, ring_cq_sz, ring_sqes_sz;
static struct io_uring_params ring_p;
static uintptr_t ring_buf_addr;
static size_t ring_buf_len;
static int gup_fd = -1;

static void w_fault_handler(int sig, siginfo_t *si, void *uc) {
  (void)uc;
  if (!w_guard) {
    signal(sig, SIG_DFL);
    raise(sig);
    return;
  }
  w_fault_sig = sig;
  w_fault_addr = (uintptr_t)si->si_addr;
  siglongjmp(w_jmp, 1);
}

static void reply_fault(sbuf *b) {
  b->n = 0;
  const char *name = w_fault_sig == SIGBUS ? "SIGBUS" : "SIGSEGV";
  sb_printf(b, "{\"ok\":false,\"errno\":%d,\"code\":\"EFAULT\",\"signal\":\"%s\",\"at\":%lu,\"error\":\"%s at 0x%lx\"}", EFAULT, name,
            (unsigned long)w_fault_addr, name, (unsigned long)w_fault_addr);
}

/* Run-length code of bytes: [[byte,count],...] */
static void rle_bytes(sbuf *b, const volatile unsigned char *p, size_t len) {
  sb_puts(b, "[");
  size_t i = 0;
  int first = 1;
  while (i < len) {
    unsigned char c = p[i];
    size_t j = i + 1;
    while (j < len && p[j] == c) j++;
    sb_printf(b, "%s[%u,%zu]", first ? "" : ",", c, j - i);
    first = 0;
    i = j;
  }
  sb_puts(b, "]");
}

static int ring_setup(sbuf *b) {
  if (ring_fd >= 0) return 0;
  memset(&ring_p, 0, sizeof ring_p);
  int fd = (int)syscall(__NR_io_uring_setup, 8, &ring_p);
  if (fd < 0) {
    reply_err(b, errno, "io_uring_setup");
    return -1;
  }
  ring_sq_sz = ring_p.sq_off.array + ring_p.sq_entries * sizeof(unsigned);
  ring_cq_sz = ring_p.cq_off.cqes + ring_p.cq_entries * sizeof(struct io_uring_cqe);
  if (ring_p.features & IORING_FEAT_SINGLE_MMAP) {
    if (ring_cq_sz > ring_sq_sz) ring_sq_sz = ring_cq_sz;
    ring_cq_sz = ring_sq_sz;
  }
  ring_sq = mmap(NULL, ring_sq_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
  if (ring_sq == MAP_FAILED) goto fail;
  if (ring_p.features & IORING_FEAT_SINGLE_MMAP) ring_cq = ring_sq;
  else {
    ring_cq = mmap(NULL, ring_cq_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
    if (ring_cq == MAP_FAILED) goto fail;
  }
  ring_sqes_sz = ring_p.sq_entries * sizeof(struct io_uring_sqe);
  ring_sqes = mmap(NULL, ring_sqes_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
  if (ring_sqes == MAP_FAILED) goto fail;
  ring_fd = fd;
  return 0;
fail:
  reply_err(b, errno, "io_uring mmap");
  close(fd);
  return -1;
}

static void ring_close(void) {
  if (ring_fd < 0) return;
  munmap(ring_sqes, ring_sqes_sz);
  if (ring_cq != ring_sq) munmap(ring_cq, ring_cq_sz);
  munmap(ring_sq, ring_sq_sz);
  close(ring_fd);
  ring_fd = -1;
  ring_buf_addr = 0;
  ring_buf_len = 0;
}

/* Submits one WRITE_FIXED and waits for its completion; returns the cqe result (bytes or -errno). */
static int ring_write_fixed(int fd, uint64_t off, uintptr_t addr, uint32_t len, int *res) {
  unsigned *sq_tail = (unsigned *)((char *)ring_sq + ring_p.sq_off.tail);
  unsigned *sq_mask = (unsigned *)((char *)ring_sq + ring_p.sq_off.ring_mask);
  unsigned *sq_array = (unsigned *)((char *)ring_sq + ring_p.sq_off.array);
  unsigned *cq_head = (unsigned *)((char *)ring_cq + ring_p.cq_off.head);
  unsigned *cq_tail = (unsigned *)((char *)ring_cq + ring_p.cq_off.tail);
  unsigned *cq_mask = (unsigned *)((char *)ring_cq + ring_p.cq_off.ring_mask);
  struct io_uring_cqe *cqes = (struct io_uring_cqe *)((char *)ring_cq + ring_p.cq_off.cqes);
  unsigned tail = __atomic_load_n(sq_tail, __ATOMIC_ACQUIRE);
  unsigned idx = tail & *sq_mask;
  struct io_uring_sqe *sqe = (struct io_uring_sqe *)ring_sqes + idx;
  memset(sqe, 0, sizeof *sqe);
  sqe->opcode = IORING_OP_WRITE_FIXED;
  sqe->fd = fd;
  sqe->off = off;
  sqe->addr = addr;
  sqe->len = len;
  sqe->buf_index = 0;
  sqe->user_data = 42;
  sq_array[idx] = idx;
  __atomic_store_n(sq_tail, tail + 1, __ATOMIC_RELEASE);
  for (;;) {
    long r = syscall(__NR_io_uring_enter, ring_fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    break;
  }
  unsigned head = __atomic_load_n(cq_head, __ATOMIC_ACQUIRE);
  if (head == __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE)) {
    errno = EAGAIN;
    return -1;
  }
  *res = cqes[head & *cq_mask].res;
  __atomic_store_n(cq_head, head + 1, __ATOMIC_RELEASE);
  return 0;
}

/* Counts present / swapped pages of [addr, addr+len) in the own pagemap (after MADV_PAGEOUT). */
static void self_pagemap_counts(uintptr_t addr, size_t len, long *present, long *swapped) {
  *present = *swapped = -1;
  int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  size_t n = (len + PAGE - 1) / PAGE;
  if (n > (1u << 18)) n = 1u << 18;
  uint64_t *e = malloc(n * 8);
  if (!e) _exit(99);
  ssize_t k = pread(fd, e, n * 8, (off_t)(addr / PAGE * 8));
  close(fd);
  if (k < 0) {
    free(e);
    return;
  }
  *present = *swapped = 0;
  for (size_t i = 0; i < (size_t)k / 8; i++) {
    if (e[i] >> 63 & 1) (*present)++;
    if (e[i] >> 62 & 1) (*swapped)++;
  }
  free(e);
}

static void worker_cmd(args_t *a, sbuf *b, int passed_fd) {
  int bad = 0;
  const char *c = a->cmd;
  b->n = 0;
  uintptr_t addr = (uintptr_t)arg_num(a, "addr", 0, &bad);
  size_t len = (size_t)arg_num(a, "len", 0, &bad);
  int fd = (int)arg_num(a, "fd", -1, &bad);
  long long off = arg_num(a, "off", 0, &bad);
  if (bad) {
    reply_err(b, EINVAL, "bad number argument");
    return;
  }

  if (!strcmp(c, "ping")) {
    sb_printf(b, "{\"ok\":true,\"pid\":%d}", getpid());
  } else if (!strcmp(c, "fork")) {
    if (passed_fd < 0) {
      reply_err(b, EINVAL, "fork without a socket");
      return;
    }
    long child = syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, NULL, NULL, 0);
    if (child < 0) {
      reply_err(b, errno, "clone");
      close(passed_fd);
      return;
    }
    if (child == 0) {
      close(w_sock);
      w_sock = passed_fd;
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != ctl_pid) _exit(111);
      b->n = 0;
      return; /* the child sends no reply; the controller answers with the parent's reply */
    }
    close(passed_fd);
    sb_printf(b, "{\"ok\":true,\"pid\":%ld}", child);
  } else if (!strcmp(c, "exit")) {
    _exit((int)arg_num(a, "status", 0, &bad));
  } else if (!strcmp(c, "mmap")) {
    int prot = PROT_READ | PROT_WRITE;
    if (parse_prot(arg_str(a, "prot", "rw"), &prot)) {
      reply_err(b, EINVAL, "prot");
      return;
    }
    const char *share = arg_str(a, "share", "private");
    int flags = !strcmp(share, "shared") ? MAP_SHARED : MAP_PRIVATE;
    if (fd < 0) flags |= MAP_ANONYMOUS;
    uint64_t huge = (uint64_t)arg_num(a, "hugetlb", 0, &bad);
    if (huge) flags |= MAP_HUGETLB | (log2_u64(huge) << MAP_HUGE_SHIFT);
    if (arg_num(a, "populate", 0, &bad)) flags |= MAP_POPULATE;
    if (arg_num(a, "noreserve", 0, &bad)) flags |= MAP_NORESERVE;
    size_t align = (size_t)arg_num(a, "align", 0, &bad);
    if (bad || !len || (align & (align - 1))) {
      reply_err(b, EINVAL, "mmap arguments");
      return;
    }
    void *p;
    if (align > PAGE) {
      char *res = mmap(NULL, len + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (res == MAP_FAILED) {
        reply_err(b, errno, "mmap reserve");
        return;
      }
      uintptr_t at = ((uintptr_t)res + align - 1) & ~(uintptr_t)(align - 1);
      p = mmap((void *)at, len, prot, flags | MAP_FIXED, fd, (off_t)off);
      int e = errno;
      if (p == MAP_FAILED) {
        munmap(res, len + align);
        reply_err(b, e, "mmap");
        return;
      }
      if (at > (uintptr_t)res) munmap(res, at - (uintptr_t)res);
      size_t tail = (uintptr_t)res + len + align - (at + len);
      if (tail) munmap((void *)(at + len), tail);
    } else {
      p = mmap(NULL, len, prot, flags, fd, (off_t)off);
      if (p == MAP_FAILED) {
        reply_err(b, errno, "mmap");
        return;
      }
    }
    sb_printf(b, "{\"ok\":true,\"addr\":%lu}", (unsigned long)p);
  } else if (!strcmp(c, "munmap")) {
    if (munmap((void *)addr, len)) reply_err(b, errno, "munmap");
    else sb_puts(b, "{\"ok\":true}");
  } else if (!strcmp(c, "mprotect")) {
    int prot;
    if (parse_prot(arg_str(a, "prot", ""), &prot)) reply_err(b, EINVAL, "prot");
    else if (mprotect((void *)addr, len, prot)) reply_err(b, errno, "mprotect");
    else sb_puts(b, "{\"ok\":true}");
  } else if (!strcmp(c, "madvise")) {
    int adv = parse_advice(arg_str(a, "advice", ""));
    if (adv < 0) reply_err(b, EINVAL, "unknown advice");
    else if (madvise((void *)addr, len, adv)) reply_err(b, errno, "madvise");
    else if (adv == MADV_PAGEOUT) {
      long present, swapped;
      self_pagemap_counts(addr, len, &present, &swapped);
      sb_printf(b, "{\"ok\":true,\"present\":%ld,\"swapped\":%ld}", present, swapped);
    } else sb_puts(b, "{\"ok\":true}");
  } else if (!strcmp(c, "mremap")) {
    uintptr_t to = (uintptr_t)arg_num(a, "to", 0, &bad);
    size_t newlen = (size_t)arg_num(a, "newlen", (long long)len, &bad);
    void *p = to ? mremap((void *)addr, len, newlen, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)to)
                 : mremap((void *)addr, len, newlen, MREMAP_MAYMOVE);
    if (p == MAP_FAILED) reply_err(b, errno, "mremap");
    else sb_printf(b, "{\"ok\":true,\"addr\":%lu}", (unsigned long)p);
  } else if (!strcmp(c, "mlock") || !strcmp(c, "munlock")) {
    int r = c[1] == 'l' ? mlock((void *)addr, len) : munlock((void *)addr, len);
    if (r) reply_err(b, errno, "%s", c);
    else sb_puts(b, "{\"ok\":true}");
  } else if (!strcmp(c, "write")) {
    int byte = (int)arg_num(a, "byte", 0, &bad);
    w_fault_sig = 0;
    if (sigsetjmp(w_jmp, 1) == 0) {
      w_guard = 1;
      memset((void *)addr, byte, len);
      w_guard = 0;
      sb_puts(b, "{\"ok\":true}");
    } else {
      w_guard = 0;
      reply_fault(b);
    }
  } else if (!strcmp(c, "read")) {
    sbuf tmp = {0};
    if (sigsetjmp(w_jmp, 1) == 0) {
      w_guard = 1;
      rle_bytes(&tmp, (const volatile unsigned char *)addr, len);
      w_guard = 0;
      sb_puts(b, "{\"ok\":true,\"data\":");
      sb_put(b, tmp.p, tmp.n);
      sb_puts(b, "}");
    } else {
      w_guard = 0;
      reply_fault(b);
    }
    free(tmp.p);
  } else if (!strcmp(c, "memfd")) {
    uint64_t huge = (uint64_t)arg_num(a, "hugetlb", 0, &bad);
    unsigned flags = MFD_CLOEXEC;
    if (huge) flags |= MFD_HUGETLB | ((unsigned)log2_u64(huge) << MAP_HUGE_SHIFT);
    int r = (int)syscall(SYS_memfd_create, "cowhost", flags);
    if (r < 0) reply_err(b, errno, "memfd_create");
    else sb_printf(b, "{\"ok\":true,\"fd\":%d}", r);
  } else if (!strcmp(c, "tmpfile")) {
    const char *dir = arg_str(a, "dir", "/tmp");
    int flags = O_TMPFILE | O_RDWR | O_CLOEXEC;
    if (arg_num(a, "direct", 0, &bad)) flags |= O_DIRECT;
    int r = open(dir, flags, 0600);
    if (r < 0) reply_err(b, errno, "open(%s, O_TMPFILE%s)", dir, (flags & O_DIRECT) ? "|O_DIRECT" : "");
    else sb_printf(b, "{\"ok\":true,\"fd\":%d}", r);
  } else if (!strcmp(c, "reopen")) {
    /* a second open file description of fd (e.g. with O_DIRECT for one step, the first fd stays buffered) */
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int flags = O_RDWR | O_CLOEXEC;
    if (arg_num(a, "direct", 0, &bad)) flags |= O_DIRECT;
    int r = open(path, flags);
    if (r < 0) reply_err(b, errno, "open(%s%s)", path, (flags & O_DIRECT) ? ", O_DIRECT" : "");
    else sb_printf(b, "{\"ok\":true,\"fd\":%d}", r);
  } else if (!strcmp(c, "ftruncate")) {
    if (ftruncate(fd, (off_t)len)) reply_err(b, errno, "ftruncate");
    else sb_puts(b, "{\"ok\":true}");
  } else if (!strcmp(c, "fallocate")) {
    if (fallocate(fd, 0, (off_t)off, (off_t)len)) reply_err(b, errno, "fallocate");
    else sb_puts(b, "{\"ok\":true}");
  } else if (!strcmp(c, "close")) {
    if (close(fd)) reply_err(b, errno, "close");
    else sb_puts(b, "{\"ok\":true}");
  } else if (!strcmp(c, "pwrite")) {
    /* writes len bytes of value `byte` from a private buffer of the helper (not scenario memory) */
    int byte = (int)arg_num(a, "byte", 0, &bad);
    void *buf = NULL;
    if (posix_memalign(&buf, PAGE, len ? len : 1)) _exit(99);
    memset(buf, byte, len);
    ssize_t r = pwrite(fd, buf, len, (off_t)off);
    free(buf);
    if (r < 0) reply_err(b, errno, "pwrite");
    else sb_printf(b, "{\"ok\":true,\"bytes\":%zd}", r);
  } else if (!strcmp(c, "pread")) {
    void *buf = NULL;
    if (posix_memalign(&buf, PAGE, len ? len : 1)) _exit(99);
    ssize_t r = pread(fd, buf, len, (off_t)off);
    if (r < 0) reply_err(b, errno, "pread");
    else {
      sb_printf(b, "{\"ok\":true,\"bytes\":%zd,\"data\":", r);
      rle_bytes(b, buf, (size_t)r);
      sb_puts(b, "}");
    }
    free(buf);
  } else if (!strcmp(c, "fdread") || !strcmp(c, "fdwrite")) {
    /* file <-> scenario memory at addr: the kernel GUPs the user pages (O_DIRECT when fd has it) */
    ssize_t r = c[2] == 'r' ? pread(fd, (void *)addr, len, (off_t)off) : pwrite(fd, (void *)addr, len, (off_t)off);
    if (r < 0) reply_err(b, errno, "%s", c[2] == 'r' ? "pread" : "pwrite");
    else sb_printf(b, "{\"ok\":true,\"bytes\":%zd}", r);
  } else if (!strcmp(c, "pipe")) {
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC)) {
      reply_err(b, errno, "pipe2");
      return;
    }
    long size = (long)arg_num(a, "size", 0, &bad);
    long got = fcntl(p[1], F_GETPIPE_SZ);
    if (size > 0) {
      got = fcntl(p[1], F_SETPIPE_SZ, size);
      if (got < 0) {
        int e = errno;
        close(p[0]);
        close(p[1]);
        reply_err(b, e, "F_SETPIPE_SZ");
        return;
      }
    }
    sb_printf(b, "{\"ok\":true,\"rfd\":%d,\"wfd\":%d,\"size\":%ld}", p[0], p[1], got);
  } else if (!strcmp(c, "vmsplice")) {
    struct iovec iov = {(void *)addr, len};
    ssize_t r = vmsplice(fd, &iov, 1, SPLICE_F_NONBLOCK);
    if (r < 0) reply_err(b, errno, "vmsplice");
    else sb_printf(b, "{\"ok\":true,\"bytes\":%zd}", r);
  } else if (!strcmp(c, "piperead")) {
    unsigned char *buf = malloc(len ? len : 1);
    if (!buf) _exit(99);
    size_t got = 0;
    int e = 0;
    while (got < len) {
      ssize_t r = read(fd, buf + got, len - got);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) {
        e = errno;
        break;
      }
      if (r == 0) break;
      got += (size_t)r;
    }
    if (e && e != EAGAIN) reply_err(b, e, "read");
    else {
      sb_printf(b, "{\"ok\":true,\"bytes\":%zu,\"data\":", got);
      rle_bytes(b, buf, got);
      sb_puts(b, "}");
    }
    free(buf);
  } else if (!strcmp(c, "uring_register")) {
    if (ring_setup(b)) return;
    if (ring_buf_len) {
      reply_err(b, EBUSY, "a buffer is already registered (uring_unregister first)");
      return;
    }
    struct iovec iov = {(void *)addr, len};
    if (syscall(__NR_io_uring_register, ring_fd, IORING_REGISTER_BUFFERS, &iov, 1)) {
      reply_err(b, errno, "IORING_REGISTER_BUFFERS");
      return;
    }
    ring_buf_addr = addr;
    ring_buf_len = len;
    sb_printf(b, "{\"ok\":true,\"ringFd\":%d}", ring_fd);
  } else if (!strcmp(c, "uring_unregister")) {
    if (ring_fd < 0) reply_err(b, EBADF, "no ring");
    else if (syscall(__NR_io_uring_register, ring_fd, IORING_UNREGISTER_BUFFERS, NULL, 0)) reply_err(b, errno, "IORING_UNREGISTER_BUFFERS");
    else {
      ring_buf_addr = 0;
      ring_buf_len = 0;
      sb_puts(b, "{\"ok\":true}");
    }
  } else if (!strcmp(c, "uring_write_fixed")) {
    if (ring_fd < 0 || !ring_buf_len) {
      reply_err(b, EBADF, "no registered buffer");
      return;
    }
    uintptr_t src = has_arg(a, "addr") ? addr : ring_buf_addr;
    size_t n = has_arg(a, "len") ? len : ring_buf_len;
    int res = 0;
    if (ring_write_fixed(fd, (uint64_t)off, src, (uint32_t)n, &res)) reply_err(b, errno, "io_uring_enter");
    else if (res < 0) reply_err(b, -res, "IORING_OP_WRITE_FIXED");
    else sb_printf(b, "{\"ok\":true,\"bytes\":%d}", res);
  } else if (!strcmp(c, "uring_close")) {
    ring_close();
    sb_puts(b, "{\"ok\":true}");
  } else if (!strcmp(c, "gup_start")) {
    if (gup_fd < 0) gup_fd = open(GUP_TEST_PATH, O_RDWR | O_CLOEXEC);
    if (gup_fd < 0) {
      reply_err(b, errno, "open %s", GUP_TEST_PATH);
      return;
    }
    struct cowhost_pin_longterm arg = {addr, len, 0};
    if (arg_num(a, "write", 0, &bad)) arg.flags |= GUPT_FLAG_WRITE;
    if (arg_num(a, "fast", 0, &bad)) arg.flags |= GUPT_FLAG_FAST;
    if (ioctl(gup_fd, GUPT_PIN_START, &arg)) reply_err(b, errno, "PIN_LONGTERM_TEST_START");
    else sb_puts(b, "{\"ok\":true}");
  } else if (!strcmp(c, "gup_read")) {
    if (gup_fd < 0) {
      reply_err(b, EBADF, "gup_test not open");
      return;
    }
    unsigned char *buf = malloc(len ? len : 1);
    if (!buf) _exit(99);
    uint64_t p = (uint64_t)(uintptr_t)buf;
    if (ioctl(gup_fd, GUPT_PIN_READ, &p)) reply_err(b, errno, "PIN_LONGTERM_TEST_READ");
    else {
      sb_puts(b, "{\"ok\":true,\"data\":");
      rle_bytes(b, buf, len);
      sb_puts(b, "}");
    }
    free(buf);
  } else if (!strcmp(c, "gup_stop")) {
    if (gup_fd < 0) reply_err(b, EBADF, "gup_test not open");
    else if (ioctl(gup_fd, GUPT_PIN_STOP)) reply_err(b, errno, "PIN_LONGTERM_TEST_STOP");
    else sb_puts(b, "{\"ok\":true}");
  } else {
    reply_err(b, ENOSYS, "unknown command %s", c);
  }
  if (bad && b->n == 0) reply_err(b, EINVAL, "bad number argument");
}

static void worker_loop(void) {
  struct sigaction sa = {0};
  sa.sa_sigaction = w_fault_handler;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigaction(SIGSEGV, &sa, NULL);
  sigaction(SIGBUS, &sa, NULL);
  lreader r = {w_sock, NULL, 0, 0};
  sbuf out = {0};
  for (;;) {
    int passed = -1;
    r.fd = w_sock;
    char *line = read_line(&r, &passed);
    if (!line) _exit(0); /* controller gone */
    args_t a;
    int old_sock = w_sock;
    if (parse_args(line, &a)) reply_err(&out, EINVAL, "malformed command");
    else worker_cmd(&a, &out, passed);
    free(line);
    if (w_sock != old_sock) {
      /* we are a freshly forked child: fresh reader on the new socket, no reply */
      free(r.buf);
      r = (lreader){w_sock, NULL, 0, 0};
      continue;
    }
    sb_put(&out, "\n", 1);
    if (write_all(w_sock, out.p, out.n)) _exit(0);
  }
}

/* ---------------------------------------------------------------- controller */

typedef struct {
  int alive;
  pid_t pid;
  int sock;
  lreader r;
  unsigned long long mapped; /* bytes of non-hugetlb mappings made through this process (bound) */
} proc_t;

static proc_t procs[MAX_PROCS];
static unsigned long long mem_limit = 1ULL << 30;
static int kpagecount_fd = -1, kpageflags_fd = -1;

static void kill_all(void) {
  for (int i = 0; i < MAX_PROCS; i++)
    if (procs[i].alive && procs[i].pid > 0) kill(procs[i].pid, SIGKILL);
}

static void on_term(int sig) {
  (void)sig;
  kill_all();
  _exit(3);
}

static int spawn_worker0(void) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) return -1;
  pid_t p = fork();
  if (p < 0) return -1;
  if (p == 0) {
    close(sv[0]);
    close(0);
    int devnull = open("/dev/null", O_RDONLY);
    (void)devnull;
    w_sock = sv[1];
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != ctl_pid) _exit(111);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    worker_loop();
    _exit(0);
  }
  close(sv[1]);
  procs[0] = (proc_t){1, p, sv[0], {sv[0], NULL, 0, 0}, 0};
  return 0;
}

static unsigned long long total_mapped(void) {
  unsigned long long t = 0;
  for (int i = 0; i < MAX_PROCS; i++)
    if (procs[i].alive) t += procs[i].mapped;
  return t;
}

/* Sends a line to worker i (with an fd if fd >= 0) and reads its reply line; NULL if it died. */
static char *ask_worker(int i, const char *line, int fd) {
  proc_t *p = &procs[i];
  size_t n = strlen(line);
  char *msg = malloc(n + 2);
  if (!msg) _exit(99);
  memcpy(msg, line, n);
  msg[n] = '\n';
  msg[n + 1] = 0;
  int rc;
  if (fd >= 0) {
    struct iovec iov = {msg, n + 1};
    union {
      char b[CMSG_SPACE(sizeof(int))];
      struct cmsghdr align;
    } cm;
    memset(&cm, 0, sizeof cm);
    struct msghdr mh = {0};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cm.b;
    mh.msg_controllen = sizeof cm.b;
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    ssize_t k;
    do k = sendmsg(p->sock, &mh, MSG_NOSIGNAL);
    while (k < 0 && errno == EINTR);
    rc = k == (ssize_t)(n + 1) ? 0 : -1;
  } else {
    rc = write_all(p->sock, msg, n + 1);
  }
  free(msg);
  if (rc) return NULL;
  return read_line(&p->r, NULL);
}

/* A worker that stopped answering: reap it and describe how it ended. */
static void worker_died(int i, sbuf *b) {
  proc_t *p = &procs[i];
  int st = 0;
  pid_t r;
  do r = waitpid(p->pid, &st, 0);
  while (r < 0 && errno == EINTR);
  close(p->sock);
  free(p->r.buf);
  p->alive = 0;
  b->n = 0;
  if (r > 0 && WIFSIGNALED(st))
    sb_printf(b, "{\"ok\":false,\"errno\":%d,\"code\":\"ESRCH\",\"error\":\"process %d died by signal %d\",\"died\":true,\"signal\":%d}", ESRCH, i,
              WTERMSIG(st), WTERMSIG(st));
  else
    sb_printf(b, "{\"ok\":false,\"errno\":%d,\"code\":\"ESRCH\",\"error\":\"process %d exited (status %d)\",\"died\":true,\"status\":%d}", ESRCH, i,
              r > 0 ? WEXITSTATUS(st) : -1, r > 0 ? WEXITSTATUS(st) : -1);
}

static void json_bool(sbuf *b, const char *key, int v) { sb_printf(b, ",\"%s\":%s", key, v ? "true" : "false"); }

/* PAGEMAP_SCAN (include/uapi/linux/fs.h, 6.7+), declared here: the build host's uapi may be older */
struct cowhost_page_region {
  uint64_t start, end, categories;
};
struct cowhost_pm_scan_arg {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
  uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define COWHOST_PAGEMAP_SCAN _IOWR('f', 16, struct cowhost_pm_scan_arg)
#define COWHOST_PAGE_IS_PRESENT (1ULL << 3)
#define COWHOST_PAGE_IS_HUGE (1ULL << 6)

/* Per page of [addr, addr + n pages): 1 if PMD-mapped THP or hugetlb (PAGE_IS_HUGE), 0 if not,
   all -1 if the kernel has no PAGEMAP_SCAN. */
static void scan_huge(int fd, uintptr_t addr, long n, signed char *out) {
  memset(out, 0, (size_t)n);
  struct cowhost_page_region *vec = calloc((size_t)n, sizeof *vec);
  if (!vec) _exit(99);
  struct cowhost_pm_scan_arg arg = {0};
  arg.size = sizeof arg;
  arg.start = addr;
  arg.end = addr + (uint64_t)n * PAGE;
  arg.vec = (uint64_t)(uintptr_t)vec;
  arg.vec_len = (uint64_t)n;
  arg.return_mask = COWHOST_PAGE_IS_PRESENT | COWHOST_PAGE_IS_HUGE;
  long k = ioctl(fd, COWHOST_PAGEMAP_SCAN, &arg);
  if (k < 0) {
    memset(out, -1, (size_t)n);
  } else {
    for (long i = 0; i < k; i++) {
      if (!(vec[i].categories & COWHOST_PAGE_IS_HUGE)) continue;
      for (uint64_t a = vec[i].start; a < vec[i].end; a += PAGE)
        if (a >= addr && a < arg.end) out[(a - addr) / PAGE] = 1;
    }
  }
  free(vec);
}

static void ctl_pagemap(proc_t *p, uintptr_t addr, long n, sbuf *b) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/pagemap", p->pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    reply_err(b, errno, "open %s", path);
    return;
  }
  uint64_t *e = calloc((size_t)n, 8);
  if (!e) _exit(99);
  ssize_t k = pread(fd, e, (size_t)n * 8, (off_t)(addr / PAGE * 8));
  int err = errno;
  signed char *hv = malloc((size_t)n);
  if (!hv) _exit(99);
  if (k >= 0) scan_huge(fd, addr & ~(uintptr_t)(PAGE - 1), n, hv);
  close(fd);
  if (k < 0) {
    free(e);
    free(hv);
    reply_err(b, err, "read %s", path);
    return;
  }
  sb_puts(b, "{\"ok\":true,\"pages\":[");
  for (long i = 0; i < n; i++) {
    uint64_t v = e[i];
    int present = v >> 63 & 1, swapped = v >> 62 & 1;
    uint64_t frame = v & ((1ULL << 55) - 1);
    if (i) sb_puts(b, ",");
    sb_printf(b, "{\"present\":%s", present ? "true" : "false");
    json_bool(b, "swapped", swapped);
    json_bool(b, "file", v >> 61 & 1);
    json_bool(b, "exclusive", v >> 56 & 1);
    json_bool(b, "softDirty", v >> 55 & 1);
    json_bool(b, "uffdWp", v >> 57 & 1);
    if (swapped && frame) sb_printf(b, ",\"swapType\":%llu,\"swapOffset\":%llu", (unsigned long long)(frame & 31), (unsigned long long)(frame >> 5));
    if (present && hv[i] >= 0) json_bool(b, "pmd", hv[i]);
    if (present && frame) {
      sb_printf(b, ",\"pfn\":%llu", (unsigned long long)frame);
      uint64_t cnt = 0, fl = 0;
      if (kpagecount_fd >= 0 && kpageflags_fd >= 0 && pread(kpagecount_fd, &cnt, 8, (off_t)(frame * 8)) == 8 &&
          pread(kpageflags_fd, &fl, 8, (off_t)(frame * 8)) == 8) {
        int anon = fl >> 12 & 1;
        sb_printf(b, ",\"count\":%llu,\"kflags\":\"0x%llx\"", (unsigned long long)cnt, (unsigned long long)fl);
        json_bool(b, "anon", anon);
        json_bool(b, "thp", fl >> 22 & 1);
        json_bool(b, "zero", fl >> 24 & 1);
        json_bool(b, "huge", fl >> 17 & 1);
        json_bool(b, "ksm", fl >> 21 & 1);
        json_bool(b, "head", fl >> 15 & 1);
        json_bool(b, "tail", fl >> 16 & 1);
        json_bool(b, "lru", fl >> 5 & 1);
        json_bool(b, "swapcache", fl >> 13 & 1);
        json_bool(b, "mlocked", fl >> 33 & 1);
        json_bool(b, "anonExclusive", anon && (fl >> 34 & 1));
      }
    }
    sb_puts(b, "}");
  }
  sb_puts(b, "]}");
  free(e);
  free(hv);
}

/* "Key:   123 kB" lines of a /proc file into JSON numbers (kB); other values as strings. */
static void kv_lines(sbuf *b, const char *text, const char *const *prefixes, size_t nprefix) {
  const char *s = text;
  while (*s) {
    const char *eol = strchr(s, '\n');
    size_t linelen = eol ? (size_t)(eol - s) : strlen(s);
    const char *colon = memchr(s, ':', linelen);
    int want = nprefix == 0;
    for (size_t i = 0; i < nprefix && colon; i++)
      if (!strncmp(s, prefixes[i], strlen(prefixes[i]))) want = 1;
    if (colon && want && colon > s) {
      char key[64], val[256];
      size_t kl = (size_t)(colon - s) < sizeof key - 1 ? (size_t)(colon - s) : sizeof key - 1;
      memcpy(key, s, kl);
      key[kl] = 0;
      const char *v = colon + 1;
      while (v < s + linelen && (*v == ' ' || *v == '\t')) v++;
      size_t vl = (size_t)(s + linelen - v) < sizeof val - 1 ? (size_t)(s + linelen - v) : sizeof val - 1;
      memcpy(val, v, vl);
      val[vl] = 0;
      char *end;
      unsigned long long x = strtoull(val, &end, 10);
      sb_puts(b, ",");
      sb_json_str(b, key);
      if (end != val && (!*end || !strcmp(end, " kB"))) sb_printf(b, ":%llu", x);
      else {
        sb_puts(b, ":");
        sb_json_str(b, val);
      }
    }
    s += linelen + (eol ? 1 : 0);
  }
}

static void ctl_smaps(proc_t *p, uintptr_t addr, sbuf *b) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/smaps", p->pid);
  char *text = read_file_str(path, 4 << 20);
  if (!text) {
    reply_err(b, errno, "read %s", path);
    return;
  }
  char *s = text, *found = NULL, *next = NULL;
  unsigned long lo = 0, hi = 0;
  while (s && *s) {
    unsigned long a0, a1;
    if (sscanf(s, "%lx-%lx ", &a0, &a1) == 2 && strchr(s, '\n') && memchr(s, '-', 20)) {
      if (found) {
        next = s;
        break;
      }
      if (addr >= a0 && addr < a1) {
        found = s;
        lo = a0;
        hi = a1;
      }
    }
    char *eol = strchr(s, '\n');
    s = eol ? eol + 1 : NULL;
  }
  if (!found) {
    free(text);
    reply_err(b, ENOENT, "no mapping at 0x%lx", (unsigned long)addr);
    return;
  }
  if (next) *next = 0;
  char *body = strchr(found, '\n');
  sb_printf(b, "{\"ok\":true,\"start\":%lu,\"end\":%lu", lo, hi);
  if (body) kv_lines(b, body + 1, NULL, 0);
  sb_puts(b, "}");
  free(text);
}

static void ctl_status(proc_t *p, sbuf *b) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/status", p->pid);
  char *text = read_file_str(path, 1 << 16);
  if (!text) {
    reply_err(b, errno, "read %s", path);
    return;
  }
  static const char *const pre[] = {"Vm", "Rss", "HugetlbPages"};
  sb_printf(b, "{\"ok\":true,\"pid\":%d", p->pid);
  kv_lines(b, text, pre, 3);
  sb_puts(b, "}");
  free(text);
}

static void ctl_meminfo(sbuf *b) {
  char *text = read_file_str("/proc/meminfo", 1 << 16);
  if (!text) {
    reply_err(b, errno, "read /proc/meminfo");
    return;
  }
  sb_puts(b, "{\"ok\":true");
  kv_lines(b, text, NULL, 0);
  sb_puts(b, "}");
  free(text);
}

/* Does pagemap show PFNs to us? (root with CAP_SYS_ADMIN) */
static int pfn_visible(void) {
  static volatile char probe[PAGE] __attribute__((aligned(4096)));
  probe[0] = 1;
  int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  uint64_t e = 0;
  ssize_t k = pread(fd, &e, 8, (off_t)((uintptr_t)probe / PAGE * 8));
  close(fd);
  return k == 8 && (e >> 63 & 1) && (e & ((1ULL << 55) - 1)) != 0;
}

static void ctl_info(sbuf *b) {
  sb_printf(b, "{\"ok\":true,\"version\":%d,\"pid\":%d,\"uid\":%d,\"pageSize\":%ld,\"memLimit\":%llu,\"mapped\":%llu", COWHOST_VERSION, getpid(),
            (int)geteuid(), sysconf(_SC_PAGESIZE), mem_limit, total_mapped());
  json_bool(b, "pfn", pfn_visible());
  json_bool(b, "kpage", kpagecount_fd >= 0 && kpageflags_fd >= 0);
  json_bool(b, "gupTest", access(GUP_TEST_PATH, R_OK | W_OK) == 0);
  char *mi = read_file_str("/proc/meminfo", 1 << 16);
  long long swap = -1;
  if (mi) {
    char *s = strstr(mi, "SwapTotal:");
    if (s) swap = atoll(s + 10);
    free(mi);
  }
  sb_printf(b, ",\"swapTotalKb\":%lld}", swap);
}

static int find_free_slot(void) {
  for (int i = 0; i < MAX_PROCS; i++)
    if (!procs[i].alive && procs[i].pid == 0) return i;
  for (int i = 0; i < MAX_PROCS; i++)
    if (!procs[i].alive) return i;
  return -1;
}

static void ctl_command(char *line, sbuf *b) {
  b->n = 0;
  char *copy = strdup(line);
  if (!copy) _exit(99);
  args_t a;
  if (parse_args(copy, &a)) {
    reply_err(b, EINVAL, "malformed command");
    free(copy);
    return;
  }
  int bad = 0;
  long pi = (long)arg_num(&a, "p", 0, &bad);
  const char *c = a.cmd;
  if (bad) {
    reply_err(b, EINVAL, "bad number argument");
    goto out;
  }
  if (!strcmp(c, "info")) {
    ctl_info(b);
    goto out;
  }
  if (!strcmp(c, "meminfo")) {
    ctl_meminfo(b);
    goto out;
  }
  if (!strcmp(c, "procs")) {
    sb_puts(b, "{\"ok\":true,\"procs\":[");
    int first = 1;
    for (int i = 0; i < MAX_PROCS; i++)
      if (procs[i].alive) {
        sb_printf(b, "%s{\"p\":%d,\"pid\":%d,\"mapped\":%llu}", first ? "" : ",", i, procs[i].pid, procs[i].mapped);
        first = 0;
      }
    sb_puts(b, "]}");
    goto out;
  }
  if (pi < 0 || pi >= MAX_PROCS || !procs[pi].alive) {
    reply_err(b, ESRCH, "no live process %ld", pi);
    goto out;
  }
  proc_t *p = &procs[pi];
  if (!strcmp(c, "pagemap")) {
    uintptr_t addr = (uintptr_t)arg_num(&a, "addr", 0, &bad);
    long n = (long)arg_num(&a, "n", 1, &bad);
    if (bad || n < 1 || n > MAX_PAGEMAP_PAGES) reply_err(b, EINVAL, "pagemap: n must be 1..%d", MAX_PAGEMAP_PAGES);
    else ctl_pagemap(p, addr, n, b);
  } else if (!strcmp(c, "status")) {
    ctl_status(p, b);
  } else if (!strcmp(c, "smaps")) {
    ctl_smaps(p, (uintptr_t)arg_num(&a, "addr", 0, &bad), b);
  } else if (!strcmp(c, "clear_refs")) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/clear_refs", p->pid);
    const char *v = arg_str(&a, "value", "4");
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, v, strlen(v)) < 0) reply_err(b, errno, "write %s", path);
    else sb_puts(b, "{\"ok\":true}");
    if (fd >= 0) close(fd);
  } else if (!strcmp(c, "fork")) {
    int slot = find_free_slot();
    if (slot < 0) {
      reply_err(b, EAGAIN, "at most %d processes", MAX_PROCS);
      goto out;
    }
    if (total_mapped() + p->mapped > mem_limit) {
      reply_err(b, ENOMEM, "fork would exceed the memory bound (%llu of %llu bytes mapped)", total_mapped(), mem_limit);
      goto out;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
      reply_err(b, errno, "socketpair");
      goto out;
    }
    char *r = ask_worker((int)pi, "fork", sv[1]);
    close(sv[1]);
    if (!r) {
      close(sv[0]);
      worker_died((int)pi, b);
      goto out;
    }
    long child = -1;
    char *pp = strstr(r, "\"pid\":");
    if (strstr(r, "\"ok\":true") && pp) child = atol(pp + 6);
    if (child <= 0) {
      close(sv[0]);
      sb_puts(b, r);
      free(r);
      goto out;
    }
    free(r);
    free(procs[slot].r.buf);
    procs[slot] = (proc_t){1, (pid_t)child, sv[0], {sv[0], NULL, 0, 0}, p->mapped};
    sb_printf(b, "{\"ok\":true,\"p\":%d,\"pid\":%ld}", slot, child);
  } else if (!strcmp(c, "exit") || !strcmp(c, "kill")) {
    int st = 0;
    if (c[0] == 'k') kill(p->pid, SIGKILL);
    else {
      char cmd[64];
      snprintf(cmd, sizeof cmd, "exit status=%d", (int)arg_num(&a, "status", 0, &bad) & 255);
      write_all(p->sock, cmd, strlen(cmd));
      write_all(p->sock, "\n", 1);
    }
    pid_t r;
    do r = waitpid(p->pid, &st, 0);
    while (r < 0 && errno == EINTR);
    close(p->sock);
    free(p->r.buf);
    p->r.buf = NULL;
    p->alive = 0;
    p->mapped = 0;
    if (r > 0 && WIFEXITED(st)) sb_printf(b, "{\"ok\":true,\"status\":%d}", WEXITSTATUS(st));
    else if (r > 0 && WIFSIGNALED(st)) sb_printf(b, "{\"ok\":true,\"signal\":%d}", WTERMSIG(st));
    else reply_err(b, errno, "waitpid");
  } else {
    /* forwarded to the worker; the controller keeps the memory bound */
    unsigned long long add = 0;
    if (!strcmp(c, "mmap")) {
      unsigned long long len = (unsigned long long)arg_num(&a, "len", 0, &bad);
      unsigned long long huge = (unsigned long long)arg_num(&a, "hugetlb", 0, &bad);
      if (bad) {
        reply_err(b, EINVAL, "bad number argument");
        goto out;
      }
      if (!huge) {
        add = (len + PAGE - 1) & ~(PAGE - 1);
        if (total_mapped() + add > mem_limit) {
          reply_err(b, ENOMEM, "mapping of %llu bytes would exceed the memory bound (%llu of %llu bytes mapped)", len, total_mapped(), mem_limit);
          goto out;
        }
      }
      /* hugetlb (anonymous or memfd) draws from the pool the caller reserved: the pool is the bound */
    }
    char *r = ask_worker((int)pi, line, -1);
    if (!r) {
      worker_died((int)pi, b);
      goto out;
    }
    int ok = strncmp(r, "{\"ok\":true", 10) == 0;
    if (ok && add) p->mapped += add;
    if (ok && !strcmp(c, "munmap")) {
      unsigned long long len = (unsigned long long)arg_num(&a, "len", 0, &bad);
      p->mapped = p->mapped > len ? p->mapped - len : 0;
    }
    sb_puts(b, r);
    free(r);
  }
out:
  free(copy);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (!strncmp(argv[i], "--mem-limit=", 12)) mem_limit = strtoull(argv[i] + 12, NULL, 0);
    else if (!strcmp(argv[i], "--one-cpu")) {
      /* every scenario process on the CPU the controller starts on: a fault's lru_add_drain()
         then reaches the LRU batch holding a new page's extra reference (another CPU's batch
         would keep it, and a write that could reuse the page copies it: nondeterminism) */
      cpu_set_t set;
      CPU_ZERO(&set);
      int cpu = sched_getcpu();
      CPU_SET(cpu < 0 ? 0 : cpu, &set);
      if (sched_setaffinity(0, sizeof set, &set)) perror("cowhost: sched_setaffinity");
    } else if (!strcmp(argv[i], "--version")) {
      printf("cowhost %d\n", COWHOST_VERSION);
      return 0;
    } else {
      fprintf(stderr, "usage: cowhost [--mem-limit=BYTES] [--one-cpu]\n");
      return 2;
    }
  }
  ctl_pid = getpid();
  signal(SIGPIPE, SIG_IGN);
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  struct sigaction sa = {0};
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  /* a backstop for any single process: twice the bound plus room for the helper itself */
  struct rlimit rl = {(rlim_t)(2 * mem_limit + (256ULL << 20)), (rlim_t)(2 * mem_limit + (256ULL << 20))};
  if (mem_limit < (1ULL << 34)) setrlimit(RLIMIT_AS, &rl);
  kpagecount_fd = open("/proc/kpagecount", O_RDONLY | O_CLOEXEC);
  kpageflags_fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
  if (spawn_worker0()) {
    printf("{\"seq\":0,\"ok\":false,\"errno\":%d,\"error\":\"cannot start worker\"}\n", errno);
    return 1;
  }
  lreader in = {0, NULL, 0, 0};
  sbuf out = {0};
  /* greeting: seq 0 */
  out.n = 0;
  sb_puts(&out, "{\"seq\":0,");
  {
    sbuf tmp = {0};
    ctl_info(&tmp);
    sb_puts(&out, tmp.p + 1);
    free(tmp.p);
  }
  sb_puts(&out, "\n");
  if (write_all(1, out.p, out.n)) goto done;
  for (;;) {
    char *line = read_line(&in, NULL);
    if (!line) break;
    char *s = line;
    while (*s == ' ') s++;
    char *end;
    unsigned long long seq = strtoull(s, &end, 10);
    if (end == s) seq = 0;
    while (*end == ' ') end++;
    if (!*end) {
      free(line);
      continue;
    }
    if (!strncmp(end, "quit", 4) && (end[4] == 0 || end[4] == ' ')) {
      free(line);
      break;
    }
    sbuf r = {0};
    ctl_command(end, &r);
    out.n = 0;
    sb_printf(&out, "{\"seq\":%llu,", seq);
    sb_puts(&out, r.n > 1 ? r.p + 1 : "\"ok\":false}");
    sb_puts(&out, "\n");
    free(r.p);
    free(line);
    if (write_all(1, out.p, out.n)) break;
  }
done:
  kill_all();
  for (int i = 0; i < MAX_PROCS; i++)
    if (procs[i].alive) waitpid(procs[i].pid, NULL, 0);
  return 0;
}
