// Native floor for relocation: the same relocation list the loader applies, applied in C with the
// same two passes the loader makes (validate every entry against the image's segments before
// writing anything, then patch). Built by bench/run.mjs with gcc -O2 at bench time.
//
// usage: reloc rela <file> <iters> <tableOff> <count> <vbase> <delta> <imageSize> <segs> <loads>
//        reloc x86  <file> <iters> <dataStart> <dataEnd> <vbase32> <delta> <imageSize> <segs> <loads>
//   segs:  lo:hi,lo:hi,...     image-relative ranges a site may patch
//   loads: dst:src:len,...     file bytes copied into the image before each iteration (untimed)
//   [imagefile]                where the loads' bytes come from (default: <file>)
// rela: ELF64 little-endian Elf64_Rela entries, R_X86_64_RELATIVE (8) or NONE (0);
//       *(u64*)(image + r_offset - vbase) = r_addend + delta.
// x86:  Linux arch/x86/tools/relocs data read backwards from dataEnd, as
//       arch/x86/boot/compressed/misc.c handle_relocations() does: 32-bit group (u32 += delta),
//       inverse 32-bit group (i32 -= delta), 64-bit group (u64 += delta), each ended by a 0 word.
// Prints {"check_ns":[...],"apply_ns":[...],"count":N} after one untimed warm-up iteration.
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
static void die(const char *m) { perror(m); exit(1); }

static uint64_t segs[512];
static int nsegs;

static inline int in_segments(uint64_t off, uint64_t width) {
  for (int i = 0; i < nsegs; i++) {
    uint64_t lo = segs[2 * i], hi = segs[2 * i + 1];
    if (off >= lo && off < hi && hi - off >= width) return 1;
  }
  return 0;
}
static inline uint64_t ld64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline uint32_t ld32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline void st64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static inline void st32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }

static unsigned char *read_all(int fd, uint64_t off, uint64_t len) {
  unsigned char *b = malloc(len ? len : 1);
  for (uint64_t d = 0; d < len;) {
    ssize_t n = pread(fd, b + d, len - d, off + d);
    if (n <= 0) die("pread");
    d += n;
  }
  return b;
}

int main(int argc, char **argv) {
  if (argc < 11) { fprintf(stderr, "usage: see reloc.c\n"); return 2; }
  int x86 = strcmp(argv[1], "x86") == 0;
  int fd = open(argv[2], O_RDONLY);
  if (fd < 0) die("open");
  int iters = atoi(argv[3]);
  uint64_t a = strtoull(argv[4], 0, 0), b = strtoull(argv[5], 0, 0);
  uint64_t vbase = strtoull(argv[6], 0, 0), delta = strtoull(argv[7], 0, 0), isize = strtoull(argv[8], 0, 0);
  for (char *s = argv[9]; *s;) {
    segs[2 * nsegs] = strtoull(s, &s, 0); s++;
    segs[2 * nsegs + 1] = strtoull(s, &s, 0); nsegs++;
    if (*s == ',') s++;
  }
  int ifd = argc > 11 ? open(argv[11], O_RDONLY) : fd;
  if (ifd < 0) die("open image");
  unsigned char *pristine = calloc(isize, 1);
  for (char *s = argv[10]; *s;) {
    uint64_t dst = strtoull(s, &s, 0); s++;
    uint64_t src = strtoull(s, &s, 0); s++;
    uint64_t len = strtoull(s, &s, 0);
    if (*s == ',') s++;
    unsigned char *t = read_all(ifd, src, len);
    memcpy(pristine + dst, t, len);
    free(t);
  }
  unsigned char *img = mmap(NULL, isize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (img == MAP_FAILED) die("mmap");

  // The table is read once, untimed (the loader reads it while planning).
  unsigned char *table;
  uint64_t count;
  // x86 groups: [start, end) word indexes into table for ops 0, 1, 2.
  uint64_t gs[3] = {0}, ge[3] = {0};
  int ngroups = 0;
  if (!x86) {
    count = b;
    table = read_all(fd, a, count * 24);
  } else {
    table = read_all(fd, a, b - a);
    uint64_t pos = (b - a) / 4;
    for (int g = 0; g < 3; g++) {
      uint64_t end = pos;
      for (;;) {
        if (pos == 0) { fprintf(stderr, "x86 relocs: group %d has no terminator\n", g); return 1; }
        pos--;
        if (ld32(table + pos * 4) == 0) break;
      }
      gs[g] = pos + 1; ge[g] = end; ngroups++;
    }
    count = (ge[0] - gs[0]) + (ge[1] - gs[1]) + (ge[2] - gs[2]);
  }
  uint32_t v32 = (uint32_t)vbase, d32 = (uint32_t)delta;

  printf("{\"count\":%lu,", count);
  uint64_t *tc = calloc(iters, 8), *ta = calloc(iters, 8);
  for (int it = -1; it < iters; it++) {
    memcpy(img, pristine, isize);
    uint64_t t0 = now_ns();
    long bad = -1;
    if (!x86) {
      for (uint64_t i = 0; i < count; i++) {
        const unsigned char *e = table + i * 24;
        uint32_t t = (uint32_t)ld64(e + 8);
        if (t == 0) continue;
        if (t != 8 || !in_segments(ld64(e) - vbase, 8)) { bad = i; break; }
      }
    } else {
      for (int g = 0; g < ngroups && bad < 0; g++) {
        uint64_t w = g == 2 ? 8 : 4;
        for (uint64_t i = gs[g]; i < ge[g]; i++)
          if (!in_segments((uint32_t)(ld32(table + i * 4) - v32), w)) { bad = i; break; }
      }
    }
    uint64_t t1 = now_ns();
    if (bad >= 0) { fprintf(stderr, "entry %ld fails the check\n", bad); return 1; }
    if (!x86) {
      for (uint64_t i = 0; i < count; i++) {
        const unsigned char *e = table + i * 24;
        if ((uint32_t)ld64(e + 8) != 8) continue;
        st64(img + (ld64(e) - vbase), ld64(e + 16) + delta);
      }
    } else {
      for (uint64_t i = gs[0]; i < ge[0]; i++) { unsigned char *p = img + (uint32_t)(ld32(table + i * 4) - v32); st32(p, ld32(p) + d32); }
      for (uint64_t i = gs[1]; i < ge[1]; i++) { unsigned char *p = img + (uint32_t)(ld32(table + i * 4) - v32); st32(p, ld32(p) - d32); }
      for (uint64_t i = gs[2]; i < ge[2]; i++) { unsigned char *p = img + (uint32_t)(ld32(table + i * 4) - v32); st64(p, ld64(p) + delta); }
    }
    uint64_t t2 = now_ns();
    if (it >= 0) { tc[it] = t1 - t0; ta[it] = t2 - t1; }
  }
  // A checksum of the patched image, so the compiler cannot drop the work and so the bench can
  // confirm C and the loader produced the same bytes.
  // FNV-1a (32-bit) over the image's little-endian u32 words; bench/lib/stats.mjs hash32() is the same.
  uint32_t h = 2166136261u;
  for (uint64_t i = 0; i + 4 <= isize; i += 4) h = (h ^ ld32(img + i)) * 16777619u;
  printf("\"hash\":%u,\"check_ns\":[", h);
  for (int i = 0; i < iters; i++) printf("%s%lu", i ? "," : "", tc[i]);
  printf("],\"apply_ns\":[");
  for (int i = 0; i < iters; i++) printf("%s%lu", i ? "," : "", ta[i]);
  printf("]}\n");
  return 0;
}
