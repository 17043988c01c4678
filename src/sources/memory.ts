// An in-memory source: a map from names to bytes.
import { GuestImageError } from "../errors.js";
import { bytesFile, lookupNames, notFound, type Source } from "./source.js";

export function fromMap(files: Map<string, Uint8Array> | Record<string, Uint8Array>): Source {
  if (!files || typeof files !== "object") throw new GuestImageError("BAD_ARGUMENT", "fromMap needs a Map or an object of name → Uint8Array", { field: "files" });
  const map = files instanceof Map ? new Map(files) : new Map(Object.entries(files));
  for (const [name, bytes] of map) {
    if (!(bytes instanceof Uint8Array)) {
      throw new GuestImageError("BAD_ARGUMENT", `fromMap: "${name}" is not a Uint8Array`, { field: "files" });
    }
  }
  return {
    async open(name) {
      for (const n of lookupNames(name)) {
        const bytes = map.get(n);
        if (bytes) return bytesFile(name, bytes);
      }
      throw notFound(name, "the in-memory file map");
    },
  };
}
