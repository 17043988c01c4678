// Files the user picked or dropped (File, FileList) or any named Blobs, as a source. Reads are
// positional `Blob.slice(a, b)` reads, so only the bytes a load needs are read, and never more
// than READ_PIECE at once: a 2 GiB initrd does not become a 2 GiB ArrayBuffer.
import { GuestImageError } from "../errors.js";
import { hex } from "../num.js";
import { checkRead, lookupNames, notFound, type ImageFile, type Source } from "./source.js";

/** What fromFiles takes: a FileList or File[] (named by File.name), or a map of names to Blobs. */
export type FilesInput = ArrayLike<File> | Iterable<File> | Map<string, Blob> | Record<string, Blob>;

/** The largest slice read into a temporary buffer before it is copied into place. */
const READ_PIECE = 8 * 1024 * 1024;

/**
 * A source over browser File/Blob objects. A list of Files is looked up by `File.name` (and by
 * `webkitRelativePath` when a directory was picked); a map by its keys. Lookup then follows the
 * seL4 file server: the exact name, then the name without a leading "./".
 */
export function fromFiles(files: FilesInput, what = "the picked files"): Source {
  const map = toMap(files);
  return {
    async open(name) {
      for (const n of lookupNames(name)) {
        const blob = map.get(n);
        if (blob) return blobFile(name, blob);
      }
      const known = [...map.keys()];
      const list = known.length ? ` (${known.slice(0, 8).map((k) => `"${k}"`).join(", ")}${known.length > 8 ? ", …" : ""})` : "";
      throw notFound(name, `${what}${list}`);
    },
  };
}

function isBlob(v: unknown): v is Blob {
  return typeof Blob !== "undefined" && v instanceof Blob;
}

function toMap(files: FilesInput): Map<string, Blob> {
  const bad = (msg: string) => new GuestImageError("BAD_ARGUMENT", `fromFiles: ${msg}`, { field: "files" });
  if (files === null || typeof files !== "object") throw bad("needs a FileList, an array of Files or a map of names to Blobs");
  const map = new Map<string, Blob>();
  const add = (name: string, blob: unknown) => {
    if (!isBlob(blob)) throw bad(`"${name}" is not a File or Blob`);
    if (name === "") throw bad("a file has an empty name");
    const had = map.get(name);
    if (had && had !== blob) throw bad(`two different files are named "${name}"`);
    map.set(name, blob);
  };
  if (files instanceof Map) {
    for (const [k, v] of files) add(String(k), v);
  } else if (Symbol.iterator in files || "length" in files) {
    const list = Symbol.iterator in files ? [...(files as Iterable<File>)] : Array.from(files as ArrayLike<File>);
    list.forEach((f, i) => {
      if (!isBlob(f)) throw bad(`item ${i} is not a File or Blob`);
      const name = (f as Partial<File>).name;
      if (typeof name !== "string") throw bad(`item ${i} is a Blob without a name: pass a map of names to Blobs instead`);
      add(name, f);
      const rel = (f as Partial<File>).webkitRelativePath;
      if (rel && rel !== name) add(rel, f);
    });
  } else {
    for (const [k, v] of Object.entries(files)) add(k, v);
  }
  return map;
}

function blobFile(name: string, blob: Blob): ImageFile {
  return {
    name,
    size: blob.size,
    async read(dst, position) {
      checkRead(this, dst, position);
      for (let off = 0; off < dst.length; off += READ_PIECE) {
        const a = position + off;
        const n = Math.min(READ_PIECE, dst.length - off);
        let bytes: ArrayBuffer;
        try {
          bytes = await blob.slice(a, a + n).arrayBuffer();
        } catch (e) {
          const why = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
          throw new GuestImageError("IO", `reading [${hex(a)}, ${hex(a + n)}) failed: ${why} (was the file changed or removed after it was picked?)`, { image: name, cause: e });
        }
        if (bytes.byteLength !== n) {
          throw new GuestImageError("TRUNCATED", `reading [${hex(a)}, ${hex(a + n)}) gave ${hex(bytes.byteLength)} bytes (the file shrank?)`, { image: name });
        }
        dst.set(new Uint8Array(bytes), off);
      }
    },
    async close() {},
  };
}
