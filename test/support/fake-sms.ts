// A real HTTP receiver on 127.0.0.1 speaking the provider's Messages API, for tests:
// captures each form post with its basic-auth credentials; the status it answers can be set.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface CapturedSms {
  path: string;
  user: string;
  password: string;
  contentType: string;
  form: Record<string, string>;
}

export interface FakeSms {
  /** http://127.0.0.1:<port> (the SMS_API_URL) */
  url: string;
  messages: CapturedSms[];
  /** Status of the next answers (201 by default). */
  status: number;
  close(): Promise<void>;
}

export async function startFakeSms(): Promise<FakeSms> {
  const fake: Omit<FakeSms, "url" | "close"> = { messages: [], status: 201 };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const [scheme, encoded] = (req.headers.authorization ?? "").split(" ");
      const credentials = scheme === "Basic" && encoded ? Buffer.from(encoded, "base64").toString("utf8") : "";
      const colon = credentials.indexOf(":");
      fake.messages.push({
        path: req.url ?? "",
        user: colon < 0 ? "" : credentials.slice(0, colon),
        password: colon < 0 ? "" : credentials.slice(colon + 1),
        contentType: req.headers["content-type"] ?? "",
        form: Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString("utf8"))),
      });
      res.writeHead(fake.status, { "content-type": "application/json" });
      res.end(JSON.stringify(fake.status < 300 ? { sid: `SM${fake.messages.length}`, status: "queued" } : { code: 20500, message: "Internal error" }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(fake, {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}
