// fromFiles in Node (Node 20 has Blob and File). Shared with the browser project:
// test/browser/cases/files.cases.ts.
import { filesCases } from "./browser/cases/files.cases.js";

filesCases();
