/**
 * A TCP relay on 127.0.0.1 that the edge tests put between a process and
 * its upstream (a demo server's or sidecar's coordinator member, a
 * sidecar's webhook), so the upstream can be made to reset: `resetAll()`
 * resets every relayed connection on both sides at once, and a relay with
 * no target resets every connection as soon as it is accepted (an upstream
 * that resets everything). Bytes pass through untouched otherwise.
 */
import { type AddressInfo, type Server, type Socket, connect, createServer } from "node:net";
import type { Endpoint } from "./abrupt-tcp.js";

export class TcpRelay {
  /** Connections accepted so far. */
  accepted = 0;
  private readonly pairs = new Set<[Socket, Socket | undefined]>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private target: Endpoint | undefined,
  ) {}

  /** Listens on a free port; relays to `target`, or resets every connection when there is none. */
  static async start(target: Endpoint | undefined): Promise<TcpRelay> {
    let relay: TcpRelay | undefined;
    const server = createServer((client) => relay!.accept(client));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    relay = new TcpRelay(server, (server.address() as AddressInfo).port, target);
    return relay;
  }

  /** From now on the upstream resets everything: what is relayed is reset, and every new connection too. */
  resetFromNowOn(): void {
    this.target = undefined;
    this.resetAll();
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Resets every relayed connection, both the client's side and the upstream's. */
  resetAll(): void {
    for (const [client, upstream] of this.pairs) {
      client.resetAndDestroy();
      upstream?.resetAndDestroy();
    }
    this.pairs.clear();
  }

  async close(): Promise<void> {
    for (const [client, upstream] of this.pairs) {
      client.destroy();
      upstream?.destroy();
    }
    this.pairs.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    const target = this.target;
    this.accepted++;
    client.on("error", () => undefined);
    if (!target) {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect({ host: target.host, port: target.port });
    upstream.on("error", () => undefined);
    const pair: [Socket, Socket] = [client, upstream];
    this.pairs.add(pair);
    const drop = (): void => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.once("close", drop);
    upstream.once("close", drop);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
