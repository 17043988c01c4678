// fromUrl in Chromium, with the browser's fetch, against the image test server running as
// middleware of the test page's own server (vitest.config.ts). Cases: cases/url.cases.ts.
import { urlCases } from "./cases/url.cases.js";

urlCases(() => location.origin);
