// The bench client's REST wires (bench/load/rest.ts through rpc-client.ts): requests built from
// the google.api.http annotations (a bodiless GET, a snake_case JSON POST), answers read back
// into the response message, and error statuses turned into RpcErrors with the body's code,
// over HTTP/1.1 and h2c, against stub servers that record what they got.
import { expect } from "chai";
import http from "node:http";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { UserAuthService } from "../../gen/identity/v1/auth_pb.js";
import { createRpcClient, encodeRequest, RpcError, type Wire } from "../../bench/load/rpc-client.js";

const auth = UserAuthService.method;

interface Seen {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** An h2c or HTTP/1.1 server that answers every request with `answer` and records the last request. */
async function stub(wire: Wire, answer: { status: number; body: unknown }): Promise<{ url: string; seen: () => Seen | undefined; close: () => Promise<void> }> {
  let seen: Seen | undefined;
  const handler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      seen = { method: req.method!, path: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString("utf8") };
      res.statusCode = answer.status;
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify(answer.body));
    });
  };
  const server = wire === "rest-h1" ? http.createServer(handler) : http2.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen: () => seen,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe("bench REST client", () => {
  it("builds GetMe as a bodiless GET and RefreshToken as a POST of snake_case JSON, from the annotations", () => {
    const getMe = encodeRequest("rest-h1", auth.getMe, {}, { authorization: "Bearer t" });
    expect(getMe).to.include({ verb: "GET", path: "/api/auth/me" });
    expect(getMe.body.length).to.equal(0);
    expect(getMe.headers).to.deep.equal({ authorization: "Bearer t" });

    const refresh = encodeRequest("rest-h2", auth.refreshToken, { refreshToken: "r1" });
    expect(refresh).to.include({ verb: "POST", path: "/api/auth/token/refresh" });
    expect(JSON.parse(refresh.body.toString())).to.deep.equal({ refresh_token: "r1" });
    expect(refresh.headers).to.deep.equal({ "content-type": "application/json" });
  });

  for (const wire of ["rest-h1", "rest-h2"] satisfies Wire[]) {
    describe(wire, () => {
      it("sends the route and reads the answer back into the response message (response_body wrapped back into its field)", async () => {
        const server = await stub(wire, { status: 200, body: { id: "u1", username: "bob", email: "", phone_number: "+15550000001", is_active: true, deleted_at: null } });
        const client = createRpcClient(server.url, wire, { connections: 1, inFlight: 1 });
        try {
          const r = await client.unary(auth.getMe, {}, "t1");
          expect(r.user).to.include({ id: "u1", username: "bob", phoneNumber: "+15550000001", isActive: true });
          expect(server.seen()).to.include({ method: "GET", path: "/api/auth/me", body: "" });
          expect(server.seen()!.headers.authorization).to.equal("Bearer t1");
          expect(server.seen()!.headers["content-type"]).to.equal(undefined);
        } finally {
          client.close();
          await server.close();
        }
      });

      it("posts the refresh token and reads the rotated tokens", async () => {
        const server = await stub(wire, { status: 200, body: { access_token: "a2", refresh_token: "r2", expires_in: "900" } });
        const client = createRpcClient(server.url, wire, { connections: 1, inFlight: 1 });
        try {
          const r = await client.unary(auth.refreshToken, { refreshToken: "r1" });
          expect(r).to.include({ accessToken: "a2", refreshToken: "r2" });
          expect(server.seen()).to.include({ method: "POST", path: "/api/auth/token/refresh", body: '{"refresh_token":"r1"}' });
        } finally {
          client.close();
          await server.close();
        }
      });

      it("turns an error status into an RpcError with the body's code, for prepared requests too", async () => {
        const server = await stub(wire, { status: 401, body: { code: "unauthenticated", message: "invalid token", details: [] } });
        const client = createRpcClient(server.url, wire, { connections: 1, inFlight: 1 });
        try {
          const error = await client.unary(auth.getMe, {}, "wrong").then(() => undefined, (e: unknown) => e);
          expect(error).to.be.instanceOf(RpcError).and.include({ code: "unauthenticated", message: "unauthenticated: invalid token" });
          // What the pre-check of a fixed row sends: it must fail, not pass as a success.
          const sent = await client.send(encodeRequest(wire, auth.getMe, {}, { authorization: "Bearer wrong" })).then(() => undefined, (e: unknown) => e);
          expect(sent).to.be.instanceOf(RpcError).and.include({ code: "unauthenticated" });
        } finally {
          client.close();
          await server.close();
        }
      });
    });
  }
});
