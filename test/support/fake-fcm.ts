// A real HTTP receiver on 127.0.0.1 speaking FCM HTTP v1's send call, for tests:
// POST /v1/projects/{project}/messages:send with a bearer token. Captures each message;
// tokens listed in `unregistered` get FCM's answer for a dead token (404, UNREGISTERED).
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface CapturedPush {
  project: string;
  authorization: string;
  token: string;
  title: string;
  body: string;
  data?: Record<string, string>;
}

export interface FakeFcm {
  /** http://127.0.0.1:<port> (the FCM_ENDPOINT) */
  url: string;
  messages: CapturedPush[];
  /** Tokens answered as unregistered. */
  unregistered: Set<string>;
  /** Status of the other answers (200 by default). */
  status: number;
  close(): Promise<void>;
}

const SEND_PATH = /^\/v1\/projects\/([^/]+)\/messages:send$/;

export async function startFakeFcm(): Promise<FakeFcm> {
  const fake: Omit<FakeFcm, "url" | "close"> = { messages: [], unregistered: new Set(), status: 200 };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const match = SEND_PATH.exec(req.url ?? "");
      if (req.method !== "POST" || !match) {
        res.writeHead(404).end();
        return;
      }
      const { message } = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
        message: { token: string; notification: { title: string; body: string }; data?: Record<string, string> };
      };
      const reply = (status: number, payload: unknown) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(payload));
      };
      if (fake.unregistered.has(message.token)) {
        reply(404, {
          error: {
            code: 404,
            message: "Requested entity was not found.",
            status: "NOT_FOUND",
            details: [{ "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", errorCode: "UNREGISTERED" }],
          },
        });
        return;
      }
      fake.messages.push({
        project: decodeURIComponent(match[1]!),
        authorization: req.headers.authorization ?? "",
        token: message.token,
        title: message.notification.title,
        body: message.notification.body,
        data: message.data,
      });
      if (fake.status >= 300) reply(fake.status, { error: { code: fake.status, status: "UNAVAILABLE" } });
      else reply(200, { name: `projects/${match[1]}/messages/${fake.messages.length}` });
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
