/**
 * A TCP proxy that can play a network partition: while cut, nothing moves
 * in either direction (both sockets stop being read, so senders back up as
 * on a silent link) and new connections are accepted but held unanswered.
 * Healing lets held bytes flow again and connects held clients, as TCP
 * would after its retransmissions get through; endpoints that gave up
 * meanwhile (keepalive, deadlines) have closed their side already.
 */
import { type Server, type Socket, connect, createServer } from "node:net";

interface Pair {
  readonly client: Socket;
  upstream: Socket | undefined;
}

export class TcpProxy {
  private readonly server: Server;
  private readonly pairs = new Set<Pair>();
  private cut = false;

  private constructor(
    server: Server,
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {
    this.server = server;
  }

  static async listen(host: string, port: number, target: string): Promise<TcpProxy> {
    const i = target.lastIndexOf(":");
    let proxy!: TcpProxy;
    const server = createServer({ pauseOnConnect: true }, (socket) => proxy.accept(socket));
    proxy = new TcpProxy(server, target.slice(0, i), Number(target.slice(i + 1)));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    return proxy;
  }

  get isCut(): boolean {
    return this.cut;
  }

  private accept(client: Socket): void {
    const pair: Pair = { client, upstream: undefined };
    this.pairs.add(pair);
    client.setNoDelay(true);
    client.on("error", () => undefined);
    client.on("close", () => {
      pair.upstream?.destroy();
      this.pairs.delete(pair);
    });
    if (!this.cut) this.connectUpstream(pair);
  }

  private connectUpstream(pair: Pair): void {
    const upstream = connect({ host: this.targetHost, port: this.targetPort });
    pair.upstream = upstream;
    upstream.setNoDelay(true);
    upstream.on("error", () => undefined);
    upstream.on("close", () => pair.client.destroy());
    upstream.on("connect", () => {
      // By hand rather than pipe(): pipe resumes a source on 'drain', which would undo a cut.
      pair.client.on("data", (chunk: Buffer) => upstream.write(chunk));
      upstream.on("data", (chunk: Buffer) => pair.client.write(chunk));
      pair.client.on("end", () => upstream.end());
      upstream.on("end", () => pair.client.end());
      if (!this.cut) {
        pair.client.resume();
      } else {
        upstream.pause();
      }
    });
  }

  setCut(cut: boolean): void {
    if (cut === this.cut) return;
    this.cut = cut;
    for (const pair of this.pairs) {
      if (cut) {
        // Paused sockets emit no 'data': nothing moves until the heal.
        pair.client.pause();
        pair.upstream?.pause();
      } else if (pair.upstream === undefined) {
        this.connectUpstream(pair);
      } else {
        pair.client.resume();
        pair.upstream.resume();
      }
    }
  }

  async close(): Promise<void> {
    for (const pair of this.pairs) {
      pair.client.destroy();
      pair.upstream?.destroy();
    }
    this.pairs.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
