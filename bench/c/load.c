// Native floor for moving image bytes into RAM: read(2) from a (page-cached) file, or memcpy from
// a source buffer, into a destination buffer, then memset for zero fills — the same operations a
// load plan lists. Built by bench/run.mjs with gcc -O2 at bench time.
//
// usage: load <file> file|mem warm|cold <iters> <chunk> <dstsize> op...
//   op: c:<dst>:<src>:<len>   copy file bytes [src, src+len) to dst (read(2) or memcpy, in <chunk>
//                             pieces; 0 = one call per op, read(2) capped at 1 GiB)
//       z:<dst>:<len>         zero fill
// warm: the destination is allocated and every page touched once before timing (pre-faulted);
// cold: a fresh anonymous mapping per iteration, so the timed writes pay the page faults.
// Prints one JSON object: {"ns":[...]} — one timed iteration each, after one untimed warm-up.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + t.tv_nsec;
}

typedef struct { char kind; uint64_t dst, src, len; } op_t;

static void die(const char *m) { perror(m); exit(1); }

static unsigned char *fresh(size_t n) {
  void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) die("mmap");
  return p;
}

int main(int argc, char **argv) {
  if (argc < 8) { fprintf(stderr, "usage: load file file|mem warm|cold iters chunk dstsize op...\n"); return 2; }
  const char *path = argv[1];
  int from_mem = strcmp(argv[2], "mem") == 0;
  int warm = strcmp(argv[3], "warm") == 0;
  int iters = atoi(argv[4]);
  uint64_t chunk = strtoull(argv[5], 0, 0);
  uint64_t dstsize = strtoull(argv[6], 0, 0);
  int nops = argc - 7;
  op_t *ops = calloc(nops, sizeof *ops);
  for (int i = 0; i < nops; i++) {
    const char *a = argv[7 + i];
    ops[i].kind = a[0];
    if (a[0] == 'c') sscanf(a + 2, "%lu:%lu:%lu", &ops[i].dst, &ops[i].src, &ops[i].len);
    else sscanf(a + 2, "%lu:%lu", &ops[i].dst, &ops[i].len);
  }
  int fd = open(path, O_RDONLY);
  if (fd < 0) die("open");
  off_t fsize = lseek(fd, 0, SEEK_END);
  unsigned char *src = NULL;
  if (from_mem) {
    src = fresh(fsize);
    for (off_t o = 0; o < fsize;) {
      ssize_t n = pread(fd, src + o, fsize - o > (1 << 30) ? (1 << 30) : fsize - o, o);
      if (n <= 0) die("pread");
      o += n;
    }
  }
  if (chunk == 0) chunk = 1u << 30;
  unsigned char *dst = warm ? fresh(dstsize) : NULL;
  if (warm) memset(dst, 1, dstsize);
  printf("{\"ns\":[");
  for (int it = -1; it < iters; it++) {
    if (!warm) dst = fresh(dstsize);
    uint64_t t0 = now_ns();
    for (int i = 0; i < nops; i++) {
      op_t *o = &ops[i];
      if (o->kind == 'z') { memset(dst + o->dst, 0, o->len); continue; }
      if (from_mem) {
        for (uint64_t d = 0; d < o->len; d += chunk)
          memcpy(dst + o->dst + d, src + o->src + d, o->len - d < chunk ? o->len - d : chunk);
        continue;
      }
      for (uint64_t d = 0; d < o->len;) {
        uint64_t want = o->len - d < chunk ? o->len - d : chunk;
        ssize_t n = pread(fd, dst + o->dst + d, want, o->src + d);
        if (n <= 0) die("pread");
        d += n;
      }
    }
    uint64_t t1 = now_ns();
    volatile unsigned char sink = dst[dstsize - 1]; (void)sink;
    if (!warm) munmap(dst, dstsize);
    if (it >= 0) printf("%s%lu", it ? "," : "", t1 - t0);
  }
  printf("]}\n");
  return 0;
}
