// Types for initrd.mjs (the shared marker-initrd writer), for the TypeScript tests that import it.
export interface MarkerInitrdOptions {
  /** The line /init prints once userspace runs. */
  marker: string;
  /**
   * Extra shell lines run by /init after /proc and /sys are mounted and before the marker is
   * printed (e.g. `cat /proc/cmdline`). busybox applets are reachable by name (PATH=/bin).
   */
  script?: string;
  /** What /init does after the marker: "poweroff" (default), "reboot", or "halt". */
  end?: "poweroff" | "reboot" | "halt";
  /** Extra files, path (no leading slash) → content. */
  files?: Record<string, Uint8Array | string>;
}
/** The initrd as newc cpio bytes, with `busybox` as /bin/busybox. */
export function markerInitrdBytes(busybox: Uint8Array, options: MarkerInitrdOptions): Uint8Array;
