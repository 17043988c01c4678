// Guest RAM in Chromium: the Node suite's cases, unchanged (test/ram.test.ts uses no Node API).
import "../ram.test.js";
