/**
 * Partitions through TCP proxies, for machines where network namespaces
 * cannot be made. Every member listens on 127.0.0.1:(base + slot). Member
 * A's --peers entry for B is a proxy of its own, 127.0.0.1:(base + 100 +
 * A * slots + B), so cutting A–B cuts exactly those two proxies. A member
 * added at run time is known to everyone by the address given to
 * `members add`, replicated to all; that is a front proxy per slot
 * (base + 200 + slot) which cannot tell who is calling, so it is cut only
 * by isolate. Clients (gateways, meeting servers, this process) talk to
 * members directly: isolate cuts members from each other, not from them.
 */
import type { MemberNetwork, NetworkPlan } from "./network.js";
import { TcpProxy } from "./tcp-proxy.js";

const HOST = "127.0.0.1";

export class ProxyNetwork implements MemberNetwork {
  readonly mechanism = "TCP proxy";
  private readonly pairProxies = new Map<string, TcpProxy>(); // "from>to"
  private readonly frontProxies = new Map<number, TcpProxy>();

  private constructor(
    private readonly base: number,
    private readonly slots: number,
  ) {}

  static async open(plan: NetworkPlan): Promise<ProxyNetwork> {
    const net = new ProxyNetwork(plan.basePort, plan.slots);
    try {
      for (let to = 0; to < plan.slots; to++) {
        net.frontProxies.set(to, await TcpProxy.listen(HOST, net.base + 200 + to, net.listenAddress(to)));
        for (let from = 0; from < plan.slots; from++) {
          if (from === to) continue;
          net.pairProxies.set(`${from}>${to}`, await TcpProxy.listen(HOST, net.pairPort(from, to), net.listenAddress(to)));
        }
      }
    } catch (err) {
      await net.close();
      throw err;
    }
    return net;
  }

  private pairPort(from: number, to: number): number {
    return this.base + 100 + from * this.slots + to;
  }

  listenAddress(slot: number): string {
    return `${HOST}:${this.base + slot}`;
  }
  clientAddress(slot: number): string {
    return this.listenAddress(slot);
  }
  peerAddress(from: number, to: number): string {
    return from === to ? this.listenAddress(to) : `${HOST}:${this.pairPort(from, to)}`;
  }
  advertisedAddress(slot: number): string {
    return `${HOST}:${this.base + 200 + slot}`;
  }
  commandPrefix(): string[] {
    return [];
  }

  async isolate(slot: number): Promise<void> {
    for (const [key, proxy] of this.pairProxies) {
      const [from, to] = key.split(">").map(Number);
      if (from === slot || to === slot) proxy.setCut(true);
    }
    this.frontProxies.get(slot)?.setCut(true);
  }

  async cutLink(a: number, b: number): Promise<void> {
    this.pairProxies.get(`${a}>${b}`)?.setCut(true);
    this.pairProxies.get(`${b}>${a}`)?.setCut(true);
  }

  async healAll(): Promise<void> {
    for (const proxy of [...this.pairProxies.values(), ...this.frontProxies.values()]) proxy.setCut(false);
  }

  async close(): Promise<void> {
    const all = [...this.pairProxies.values(), ...this.frontProxies.values()];
    this.pairProxies.clear();
    this.frontProxies.clear();
    await Promise.all(all.map((p) => p.close()));
  }

  /** The proxies live in this process: they go with it. */
  closeSync(): void {}
}
