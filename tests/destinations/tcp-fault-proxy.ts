/**
 * A loopback TCP proxy that can cut connections after N client bytes, to fake resets mid-upload, or
 * flip one client byte per connection, to fake data damaged on the way to a server that does not check it.
 */
import net from "node:net";

export interface TcpFaultProxy {
  port: number;
  /** Connections whose client→server byte count passes this are reset; undefined = pass through. */
  cutAfterBytes?: number;
  /** In every connection, the client→server byte at this offset is inverted; undefined = none. */
  flipByteAt?: number;
  flips: number;
  cuts: number;
  /** Client connections accepted so far. */
  connections: number;
  close(): Promise<void>;
}

export async function startTcpFaultProxy(
  targetPort: number,
  targetHost = "127.0.0.1",
): Promise<TcpFaultProxy> {
  const sockets = new Set<net.Socket>();
  const proxy: TcpFaultProxy = { port: 0, cuts: 0, flips: 0, connections: 0, close: async () => {} };
  const server = net.createServer((client) => {
    proxy.connections++;
    const upstream = net.connect(targetPort, targetHost);
    sockets.add(client).add(upstream);
    let sent = 0;
    const kill = () => {
      client.resetAndDestroy();
      upstream.resetAndDestroy();
    };
    client.on("data", (chunk: Buffer) => {
      const flip = proxy.flipByteAt;
      if (flip !== undefined && flip >= sent && flip < sent + chunk.length) {
        chunk[flip - sent] = ~chunk[flip - sent]! & 0xff;
        proxy.flips++;
      }
      sent += chunk.length;
      if (proxy.cutAfterBytes !== undefined && sent > proxy.cutAfterBytes) {
        proxy.cuts++;
        kill();
        return;
      }
      if (!upstream.write(chunk)) client.pause();
    });
    upstream.on("drain", () => client.resume());
    upstream.pipe(client);
    client.on("end", () => upstream.end());
    client.on("error", kill);
    upstream.on("error", kill);
    client.on("close", () => sockets.delete(client));
    upstream.on("close", () => sockets.delete(upstream));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  proxy.port = (server.address() as net.AddressInfo).port;
  proxy.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return proxy;
}
