// The Headers of the unary gRPC fast path: read in place from the request (or a shared
// default) until changed, and then behaving like fetch's Headers without touching the source.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http2";
import { expect } from "chai";
import { CallHeaders } from "../../src/server/unary/call-headers.js";

const request = (): IncomingHttpHeaders => ({
  ":method": "POST",
  ":path": "/identity.v1.UserAuthService/GetMe",
  "content-type": "application/grpc",
  authorization: "Bearer abc",
  "set-cookie": ["a=1", "b=2"],
  "x-b": "2",
});

describe("CallHeaders", () => {
  it("reads a request's headers as fetch shows them: names case-insensitive, repeats joined, pseudo-headers hidden", () => {
    const h = new CallHeaders(request());
    expect(h.get("Authorization")).to.equal("Bearer abc");
    expect(h.get("set-cookie")).to.equal("a=1, b=2");
    expect(h.getSetCookie()).to.deep.equal(["a=1, b=2"]);
    expect(h.get(":path")).to.equal(null);
    expect(h.has(":method")).to.equal(false);
    expect(h.get("missing")).to.equal(null);
    expect([...h.keys()]).to.deep.equal(["authorization", "content-type", "set-cookie", "x-b"]);
  });

  it("changes its own copy, never the object it was read from", () => {
    const source = request();
    const h = new CallHeaders(source);
    h.set("X-A", " 1 ");
    h.append("x-b", "3");
    h.delete("authorization");
    expect([...h]).to.deep.equal([
      ["content-type", "application/grpc"],
      ["set-cookie", "a=1, b=2"],
      ["x-a", "1"],
      ["x-b", "2, 3"],
    ]);
    expect(source).to.deep.equal(request());
  });

  it("starts from shared defaults without writing to them, and copies its entries onto a header object", () => {
    const defaults = Object.freeze({ "grpc-status": "0" });
    const untouched = new CallHeaders(defaults);
    const changed = new CallHeaders(defaults);
    changed.set("grpc-status", "5");
    changed.append("grpc-message", "not found");

    const a: OutgoingHttpHeaders = { ":status": 200 };
    untouched.copyTo(a);
    const b: OutgoingHttpHeaders = {};
    changed.copyTo(b);
    expect(a).to.deep.equal({ ":status": 200, "grpc-status": "0" });
    expect(b).to.deep.equal({ "grpc-status": "5", "grpc-message": "not found" });
    expect(defaults).to.deep.equal({ "grpc-status": "0" });
    const seen: string[] = [];
    changed.forEach((value, name) => seen.push(`${name}=${value}`));
    expect(seen).to.deep.equal(["grpc-message=not found", "grpc-status=5"]);
  });
});
