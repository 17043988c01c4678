// Whole-process native baseline for case 4a's CLI row: a minimal ELF64 little-endian loader, as
// a C program would be written for the job, run as a fresh process per sample. It reads the
// program headers, pread()s every PT_LOAD straight into a guest-RAM buffer at its moved address,
// zeroes the BSS and, if the image has a PT_DYNAMIC with DT_RELA, makes the loader's two passes
// over the table where it landed in RAM: check every entry (R_X86_64_RELATIVE or NONE, site inside
// a segment), then patch (*site = r_addend + delta). The CLI's marginal time for the relocations
// is compared with this program's: the same file with and without its PT_DYNAMIC.
// Built by bench/run.mjs with gcc -O2.
//
// usage: elfload <file> <ramBase> <ramSize> <loadAddr>
// Prints "<sites patched> <checksum>" (so the work cannot be optimised away).
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static void die(const char *m) { fprintf(stderr, "elfload: %s\n", m); exit(1); }
static uint64_t ld64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint32_t ld32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint16_t ld16(const unsigned char *p) { uint16_t v; memcpy(&v, p, 2); return v; }

static void pread_all(int fd, unsigned char *dst, uint64_t len, uint64_t off) {
  for (uint64_t d = 0; d < len;) {
    ssize_t n = pread(fd, dst + d, len - d, off + d);
    if (n <= 0) die("pread");
    d += n;
  }
}

int main(int argc, char **argv) {
  if (argc != 5) die("usage: elfload <file> <ramBase> <ramSize> <loadAddr>");
  int fd = open(argv[1], O_RDONLY);
  if (fd < 0) die("open");
  uint64_t ramBase = strtoull(argv[2], 0, 0), ramSize = strtoull(argv[3], 0, 0), at = strtoull(argv[4], 0, 0);
  unsigned char eh[64];
  pread_all(fd, eh, 64, 0);
  if (memcmp(eh, "\x7f" "ELF\x02\x01", 6) != 0) die("not ELF64 LE");
  uint64_t phoff = ld64(eh + 32);
  unsigned phnum = ld16(eh + 56);
  unsigned char *ph = malloc(phnum * 56);
  pread_all(fd, ph, phnum * 56, phoff);
  uint64_t link = UINT64_MAX, segs[64][2];
  int nsegs = 0, dyn = -1;
  for (unsigned i = 0; i < phnum; i++) {
    const unsigned char *p = ph + i * 56;
    if (ld32(p) == 1 && ld64(p + 40) > 0 && ld64(p + 24) < link) link = ld64(p + 24);
    if (ld32(p) == 2) dyn = i;
  }
  uint64_t delta = at - link;
  unsigned char *ram = mmap(NULL, ramSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (ram == MAP_FAILED) die("mmap");
  for (unsigned i = 0; i < phnum; i++) {
    const unsigned char *p = ph + i * 56;
    if (ld32(p) != 1 || ld64(p + 40) == 0) continue;
    uint64_t off = ld64(p + 8), paddr = ld64(p + 24), filesz = ld64(p + 32), memsz = ld64(p + 40);
    uint64_t dst = paddr + delta - ramBase;
    if (dst + memsz > ramSize || nsegs == 64) die("segment outside RAM");
    pread_all(fd, ram + dst, filesz, off);
    memset(ram + dst + filesz, 0, memsz - filesz);
    segs[nsegs][0] = paddr - link;
    segs[nsegs][1] = paddr - link + memsz;
    nsegs++;
  }
  unsigned char *image = ram + (at - ramBase);
  uint64_t sites = 0;
  if (dyn >= 0) {
    const unsigned char *p = ph + dyn * 56;
    const unsigned char *d = image + (ld64(p + 16) - link);
    uint64_t rela = 0, relasz = 0;
    for (uint64_t o = 0; o + 16 <= ld64(p + 32); o += 16) {
      uint64_t tag = ld64(d + o), val = ld64(d + o + 8);
      if (tag == 0) break;
      if (tag == 7) rela = val;
      if (tag == 8) relasz = val;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const unsigned char *table = image + (rela - link);
    uint64_t count = relasz / 24;
    for (uint64_t i = 0; i < count; i++) {
      const unsigned char *e = table + i * 24;
      uint32_t t = (uint32_t)ld64(e + 8);
      if (t == 0) continue;
      uint64_t off = ld64(e) - link;
      int ok = 0;
      for (int s = 0; s < nsegs && !ok; s++) ok = off >= segs[s][0] && off < segs[s][1] && segs[s][1] - off >= 8;
      if (t != 8 || !ok) { fprintf(stderr, "elfload: entry %lu fails the check\n", i); return 1; }
    }
    for (uint64_t i = 0; i < count; i++) {
      const unsigned char *e = table + i * 24;
      if ((uint32_t)ld64(e + 8) != 8) continue;
      uint64_t v = ld64(e + 16) + delta;
      memcpy(image + (ld64(e) - link), &v, 8);
      sites++;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (getenv("ELFLOAD_TIME")) fprintf(stderr, "relocation passes: %.3f ms\n", (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
  }
  uint64_t h = 0;
  for (uint64_t o = 0; o + 8 <= 4096; o += 8) h ^= ld64(image + o);
  printf("%lu %lu\n", sites, h);
  return 0;
}
