// fromUrl in Node (undici's fetch) against the image test server on 127.0.0.1. The cases are
// shared with the browser project: test/browser/cases/url.cases.ts.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll } from "vitest";
import { urlCases } from "./browser/cases/url.cases.js";
import { imageServer } from "./browser/helpers/image-server.js";

let server: Server;
let origin = "";

beforeAll(async () => {
  const { handle } = imageServer();
  server = createServer((req, res) => {
    if (!handle(req, res)) {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((ok) => server.close(ok));
});

urlCases(() => origin);
