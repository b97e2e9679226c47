// Request meta from an HTTP request: who the client is behind trusted proxies, and which
// request ids are kept.
import { expect } from "chai";
import type { NodeRequest } from "../../src/server/http/plain.js";
import { requestMetaOf, trustedProxies } from "../../src/server/calls/interceptors.js";

const proxies = trustedProxies(["10.0.0.0/8", "192.168.1.1", "2001:db8::/32"]);

function request(peer: string, headers: Record<string, string | string[]> = {}): NodeRequest {
  return { socket: { remoteAddress: peer }, headers } as unknown as NodeRequest;
}

const ipOf = (peer: string, xff?: string | string[]) => requestMetaOf(request(peer, xff === undefined ? {} : { "x-forwarded-for": xff }), proxies).ip;

describe("request meta", () => {
  it("uses the socket peer when it is not a trusted proxy, whatever X-Forwarded-For says", () => {
    expect(ipOf("203.0.113.1", "198.51.100.7")).to.equal("203.0.113.1");
    expect(requestMetaOf(request("10.0.0.1", { "x-forwarded-for": "198.51.100.7" })).ip).to.equal("10.0.0.1");
  });

  it("takes the right-most hop that is not a trusted proxy", () => {
    expect(ipOf("10.0.0.1", "198.51.100.7")).to.equal("198.51.100.7");
    expect(ipOf("10.0.0.1", "1.1.1.1, 198.51.100.7, 10.2.3.4, 192.168.1.1")).to.equal("198.51.100.7");
    expect(ipOf("10.0.0.1", ["1.1.1.1, 198.51.100.7", "10.2.3.4"])).to.equal("198.51.100.7");
  });

  it("handles IPv6, IPv4-mapped peers and hops, and ports", () => {
    expect(ipOf("2001:db8::1", "2606:4700::1111, 2001:db8:5::5")).to.equal("2606:4700::1111");
    expect(ipOf("::ffff:10.0.0.9", "::ffff:198.51.100.7")).to.equal("198.51.100.7");
    expect(ipOf("::ffff:203.0.113.1")).to.equal("203.0.113.1");
    expect(ipOf("10.0.0.1", "198.51.100.7:5555")).to.equal("198.51.100.7");
    expect(ipOf("10.0.0.1", "[2606:4700::1]:443")).to.equal("2606:4700::1");
  });

  it("stops at the nearest trusted hop when the header holds garbage or only proxies", () => {
    expect(ipOf("10.0.0.1", "198.51.100.7, not-an-ip, 10.0.0.2")).to.equal("10.0.0.2");
    expect(ipOf("10.0.0.1", "10.0.0.3, 10.0.0.2")).to.equal("10.0.0.3");
    expect(ipOf("10.0.0.1", "")).to.equal("10.0.0.1");
  });

  it("keeps a well-formed x-request-id, generates one otherwise, and computes the meta once per request", () => {
    expect(requestMetaOf(request("10.0.0.1", { "x-request-id": "0b1c2d3e-trace.42" })).requestId).to.equal("0b1c2d3e-trace.42");
    for (const bad of ["short", "has space inside", "x".repeat(129), "semi;colon-123"]) {
      expect(requestMetaOf(request("10.0.0.1", { "x-request-id": bad })).requestId).to.match(/^[0-9a-f-]{36}$/);
    }
    const req = request("10.0.0.1", { "user-agent": "ua" });
    expect(requestMetaOf(req, proxies)).to.equal(requestMetaOf(req));
  });
});
