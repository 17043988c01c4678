// x86 relocation in Chromium: the Node suite's cases, unchanged (test/x86-relocs.test.ts and its
// ELF writer use no Node API).
import "../x86-relocs.test.js";
