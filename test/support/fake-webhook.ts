// A real HTTP receiver on 127.0.0.1 for webhook tests: captures every request (headers and
// raw body) and answers 500 to the first `failFirst` requests, then 204.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface CapturedWebhook {
  at: number;
  headers: Record<string, string>;
  /** The raw body, exactly as received (what the signature covers). */
  body: string;
  /** The status this receiver answered. */
  status: number;
}

export interface FakeWebhook {
  /** http://127.0.0.1:<port>/hook */
  url: string;
  requests: CapturedWebhook[];
  /** How many of the next requests fail (500). */
  failFirst: number;
  /** Resolves once `count` requests arrived. */
  waitFor(count: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startFakeWebhook({ failFirst = 0 }: { failFirst?: number } = {}): Promise<FakeWebhook> {
  const fake: Omit<FakeWebhook, "url" | "close" | "waitFor"> = { requests: [], failFirst };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const status = fake.failFirst > 0 ? 500 : 204;
      if (fake.failFirst > 0) fake.failFirst -= 1;
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(",") : (v ?? "")]));
      fake.requests.push({ at: Date.now(), headers, body: Buffer.concat(chunks).toString("utf8"), status });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(fake, {
    url: `http://127.0.0.1:${port}/hook`,
    async waitFor(count: number, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (fake.requests.length < count) {
        if (Date.now() > deadline) throw new Error(`fake webhook: ${fake.requests.length} request(s) after ${timeoutMs} ms, expected ${count}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}
