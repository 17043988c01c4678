/** The line the browser v86 boot's initrd prints from userspace (test/browser/helpers/v86-server.ts). */
export const V86_BROWSER_MARKER = "GUEST-IMAGE-V86-BROWSER-USERSPACE";
