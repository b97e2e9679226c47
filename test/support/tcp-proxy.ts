// A loopback TCP proxy in front of a store (PostgreSQL, Redis…) that a test can cut and
// restore, to play an outage without touching the shared server:
//
//   const proxy = await startTcpProxy({ host: "127.0.0.1", port: 5432 });
//   // point the service at 127.0.0.1:<proxy.port>
//   proxy.cut();          // every connection destroyed, new ones refused (ECONNREFUSED): a store that went down
//   await proxy.restore(); // accepting and forwarding again on the same port
//   proxy.stall();        // connections stay open but nothing is forwarded: a store (or network) that stopped answering
//   await proxy.close();
import net from "node:net";

export interface TcpProxy {
  /** The loopback port clients connect to. */
  readonly port: number;
  /** Connections open through the proxy. */
  readonly connections: number;
  /** Destroys every connection and refuses new ones (the listening socket is closed). */
  cut(): void;
  /** Keeps connections open but forwards nothing, either way; new connections are accepted and stall too. */
  stall(): void;
  /** Forwards again (after cut(): listens again on the same port). */
  restore(): Promise<void>;
  /** Closes everything for good. */
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }, port = 0): Promise<TcpProxy> {
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  let mode: "open" | "stalled" | "cut" = "open";
  let closed = false;

  const server = net.createServer((client) => {
    if (mode === "cut" || closed) {
      client.destroy();
      return;
    }
    const upstream = net.connect(target.port, target.host);
    const pair = { client, upstream };
    pairs.add(pair);
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    // Data is relayed by hand (not pipe()) so that stall() can hold it back.
    client.on("data", (chunk) => {
      if (mode === "open") upstream.write(chunk);
    });
    upstream.on("data", (chunk) => {
      if (mode === "open") client.write(chunk);
    });
  });

  const listen = (p: number) =>
    new Promise<number>((resolve, reject) => {
      server.once("error", reject);
      server.listen(p, "127.0.0.1", () => {
        server.off("error", reject);
        resolve((server.address() as net.AddressInfo).port);
      });
    });
  const actualPort = await listen(port);

  function destroyAll(): void {
    for (const { client, upstream } of pairs) {
      client.destroy();
      upstream.destroy();
    }
    pairs.clear();
  }

  return {
    port: actualPort,
    get connections() {
      return pairs.size;
    },
    cut() {
      if (mode === "cut") return;
      mode = "cut";
      server.close();
      destroyAll();
    },
    stall() {
      if (mode === "cut") throw new Error("stall() after cut(): restore() first");
      mode = "stalled";
    },
    async restore() {
      if (closed) throw new Error("proxy closed");
      if (mode === "cut") {
        // The port was ours a moment ago; retry briefly in case the kernel still holds it.
        for (let attempt = 0; ; attempt++) {
          try {
            await listen(actualPort);
            break;
          } catch (err) {
            if (attempt >= 20) throw err;
            await new Promise((r) => setTimeout(r, 50));
          }
        }
      } else if (mode === "stalled") {
        // What was held back is lost, as on a real network: start clean.
        destroyAll();
      }
      mode = "open";
    },
    async close() {
      if (closed) return;
      closed = true;
      destroyAll();
      if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
