// The outage fixtures themselves (test/support/tcp-proxy.ts, private-redis.ts): what other
// tests rely on when they cut a store.
import { expect } from "chai";
import { Redis } from "ioredis";
import net from "node:net";
import { startPrivateRedis, type PrivateRedis } from "../support/private-redis.js";
import { startTcpProxy } from "../support/tcp-proxy.js";

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/** PING until it answers (a client reconnects by itself after a restore). */
async function untilPong(client: Redis): Promise<string> {
  for (let i = 0; ; i++) {
    try {
      return await client.ping();
    } catch (err) {
      if (i >= 50) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

describe("outage fixtures", function () {
  this.timeout(30_000);
  let server: PrivateRedis;
  before(async () => {
    server = await startPrivateRedis();
  });
  after(async () => {
    await server?.close();
  });

  it("private redis restarts empty on the same port", async () => {
    const client = new Redis(server.url, { maxRetriesPerRequest: 1, retryStrategy: () => 50 });
    client.on("error", () => undefined);
    try {
      await client.set("k", "v");
      await server.restart();
      expect(await client.get("k")).to.equal(null);
      await server.stop();
      expect(await connects(server.port)).to.equal(false);
      await server.start();
      expect(await client.ping()).to.equal("PONG");
    } finally {
      client.disconnect();
    }
  });

  it("the proxy forwards, cuts (refusing new connections), stalls and restores", async () => {
    const proxy = await startTcpProxy({ host: "127.0.0.1", port: server.port });
    const client = new Redis(proxy.port, "127.0.0.1", { maxRetriesPerRequest: 0, commandTimeout: 300, retryStrategy: () => 50 });
    client.on("error", () => undefined);
    try {
      expect(await client.ping()).to.equal("PONG");
      expect(proxy.connections).to.equal(1);
      proxy.cut();
      expect(proxy.connections).to.equal(0);
      expect(await connects(proxy.port)).to.equal(false);
      await proxy.restore();
      expect(await connects(proxy.port)).to.equal(true);
      expect(await untilPong(client)).to.equal("PONG");
      proxy.stall();
      const stalled = await client.ping().then(
        () => "answered",
        (e: Error) => e.message,
      );
      expect(stalled).to.equal("Command timed out");
      await proxy.restore();
      expect(await untilPong(client)).to.equal("PONG");
    } finally {
      client.disconnect();
      await proxy.close();
    }
  });
});
