// A Node directory as a source (Node only: exported from the "node" entry, not the browser one).
// Reads are positional and go straight into the caller's buffer (guest RAM), in chunks below
// 2^31 bytes because fs.readSync rejects larger lengths.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { isAbsolute, resolve, sep } from "node:path";
import { GuestImageError } from "../errors.js";
import { checkRead, lookupNames, notFound, type ImageFile, type Source } from "./source.js";

const CHUNK = 1 << 30;

/** Opens a file by path and wraps it as an ImageFile. */
export function openPath(path: string, name = path): ImageFile {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") throw notFound(name, `"${path}"`);
    throw new GuestImageError("IO", `cannot open "${path}": ${(e as Error).message}`, { image: name, cause: e });
  }
  const st = fstatSync(fd);
  if (!st.isFile()) {
    closeSync(fd);
    throw new GuestImageError("BAD_ARGUMENT", `"${path}" is not a regular file`, { image: name });
  }
  let open = true;
  return {
    name,
    size: st.size,
    async read(dst, position) {
      checkRead(this, dst, position);
      let done = 0;
      while (done < dst.length) {
        let n: number;
        try {
          n = readSync(fd, dst, done, Math.min(CHUNK, dst.length - done), position + done);
        } catch (e) {
          throw new GuestImageError("IO", `read at offset ${position + done} failed: ${(e as Error).message}`, { image: name, cause: e });
        }
        if (n === 0) {
          throw new GuestImageError("TRUNCATED", `file ended at offset ${position + done}, expected ${dst.length - done} more bytes (did it shrink?)`, { image: name });
        }
        done += n;
      }
    },
    async close() {
      if (open) closeSync(fd);
      open = false;
    },
  };
}

/** Files under `dir`. Names are relative paths; names that would leave `dir` are refused. */
export function fromDirectory(dir: string): Source {
  const root = resolve(dir);
  return {
    async open(name) {
      for (const n of lookupNames(name)) {
        if (n === "" || isAbsolute(n) || n.split(/[\\/]/).includes("..")) {
          throw new GuestImageError("BAD_ARGUMENT", `file name "${name}" must be a relative path inside ${root}`, { image: name, field: "name" });
        }
        const path = resolve(root, n);
        if (!path.startsWith(root + sep)) continue;
        try {
          return openPath(path, name);
        } catch (e) {
          if (e instanceof GuestImageError && e.code === "NOT_FOUND") continue;
          throw e;
        }
      }
      throw notFound(name, `directory "${root}"`);
    },
  };
}

/** Any path on the file system, relative to the working directory (what the CLI uses). */
export function fromPaths(): Source {
  return {
    async open(name) {
      return openPath(resolve(name), name);
    },
  };
}
