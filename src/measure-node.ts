// Node: measured boot hashes with node:crypto (about 2× faster than WebCrypto on large images,
// since it hashes guest RAM in place; see src/measure.ts). Imported for its effect by src/node.ts.
import { createHash } from "node:crypto";
import { useSha256 } from "./measure.js";

useSha256((pieces) => {
  const h = createHash("sha256");
  for (const p of pieces) h.update(p);
  return new Uint8Array(h.digest());
});
