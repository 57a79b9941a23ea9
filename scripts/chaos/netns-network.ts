/**
 * Partitions made real with network namespaces (iproute2 only: no tc
 * qdisc or iptables needed). Layout, for a run tag T (1..250):
 *
 *   root namespace: bridge cvbT, address 10.77.T.254/24; clients, gateways
 *                   and meeting servers reach the members through it
 *   slot k:         namespace cvchaosTsk, veth eth0 = 10.77.T.(k+1)/24,
 *                   its peer cvvTsk enslaved to the bridge; the member
 *                   listens on 10.77.T.(k+1):7001
 *
 * isolate(k): the root-side veth goes down: slot k reaches nobody and
 * nobody reaches it (clients included). cutLink(a, b): a blackhole route
 * to b inside a's namespace and to a inside b's: those two members lose
 * each other (sends fail, established connections stall), everyone else
 * is untouched. Every address is private to namespaces made here.
 */
import { execFile, spawnSync } from "node:child_process";
import type { MemberNetwork, NetworkPlan } from "./network.js";

const MEMBER_PORT = 7001;

function ip(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("ip", args, { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`ip ${args.join(" ")} failed: ${(stderr || err.message).trim()}`));
      else resolve(stdout);
    });
  });
}

function ipSync(args: readonly string[]): boolean {
  return spawnSync("ip", args, { stdio: "ignore", timeout: 10_000 }).status === 0;
}

export class NetnsNetwork implements MemberNetwork {
  readonly mechanism = "network namespaces";
  private readonly downLinks = new Set<number>();
  private readonly blackholes = new Set<string>(); // "a>b": in a's namespace, a route to b
  private closed = false;

  private constructor(
    private readonly tag: number,
    private readonly slots: number,
  ) {}

  static async open(plan: NetworkPlan): Promise<NetnsNetwork> {
    if (spawnSync("ip", ["-V"], { stdio: "ignore" }).status !== 0) throw new Error("iproute2 (`ip`) is not installed");
    const first = (process.pid % 200) + 1;
    for (let i = 0; i < 40; i++) {
      const tag = ((first + i - 1) % 250) + 1;
      if (ipSync(["link", "show", `cvb${tag}`])) continue; // another run's bridge
      const net = new NetnsNetwork(tag, plan.slots);
      try {
        await net.setUp();
        return net;
      } catch (err) {
        net.closeSync();
        throw err;
      }
    }
    throw new Error("no free run tag for the bridge (40 taken)");
  }

  private ns(slot: number): string {
    return `cvchaos${this.tag}s${slot}`;
  }
  private veth(slot: number): string {
    return `cvv${this.tag}s${slot}`;
  }
  private bridge(): string {
    return `cvb${this.tag}`;
  }
  private host(slot: number): string {
    return `10.77.${this.tag}.${slot + 1}`;
  }

  private async setUp(): Promise<void> {
    await ip(["link", "add", this.bridge(), "type", "bridge"]);
    await ip(["addr", "add", `10.77.${this.tag}.254/24`, "dev", this.bridge()]);
    await ip(["link", "set", this.bridge(), "up"]);
    for (let k = 0; k < this.slots; k++) {
      await ip(["netns", "add", this.ns(k)]);
      await ip(["link", "add", this.veth(k), "type", "veth", "peer", "name", "eth0", "netns", this.ns(k)]);
      await ip(["link", "set", this.veth(k), "master", this.bridge(), "up"]);
      await ip(["-n", this.ns(k), "addr", "add", `${this.host(k)}/24`, "dev", "eth0"]);
      await ip(["-n", this.ns(k), "link", "set", "eth0", "up"]);
      await ip(["-n", this.ns(k), "link", "set", "lo", "up"]);
    }
    // A process can be started in a namespace (the members are).
    await new Promise<void>((resolve, reject) => {
      execFile("ip", ["netns", "exec", this.ns(0), "true"], { timeout: 10_000 }, (err, _o, stderr) =>
        err ? reject(new Error(`ip netns exec failed: ${(stderr || err.message).trim()}`)) : resolve(),
      );
    });
  }

  listenAddress(slot: number): string {
    return `${this.host(slot)}:${MEMBER_PORT}`;
  }
  clientAddress(slot: number): string {
    return this.listenAddress(slot);
  }
  peerAddress(_from: number, to: number): string {
    return this.listenAddress(to);
  }
  advertisedAddress(slot: number): string {
    return this.listenAddress(slot);
  }
  commandPrefix(slot: number): string[] {
    return ["ip", "netns", "exec", this.ns(slot)];
  }

  async isolate(slot: number): Promise<void> {
    await ip(["link", "set", this.veth(slot), "down"]);
    this.downLinks.add(slot);
  }

  async cutLink(a: number, b: number): Promise<void> {
    for (const [from, to] of [[a, b], [b, a]] as const) {
      const key = `${from}>${to}`;
      if (this.blackholes.has(key)) continue;
      await ip(["-n", this.ns(from), "route", "add", "blackhole", `${this.host(to)}/32`]);
      this.blackholes.add(key);
    }
  }

  async healAll(): Promise<void> {
    for (const slot of [...this.downLinks]) {
      await ip(["link", "set", this.veth(slot), "up"]);
      this.downLinks.delete(slot);
    }
    for (const key of [...this.blackholes]) {
      const [from, to] = key.split(">").map(Number) as [number, number];
      await ip(["-n", this.ns(from), "route", "del", "blackhole", `${this.host(to)}/32`]);
      this.blackholes.delete(key);
    }
  }

  async close(): Promise<void> {
    this.closeSync();
  }

  /** Deleting a namespace deletes its veth pair; then the bridge. */
  closeSync(): void {
    if (this.closed) return;
    this.closed = true;
    for (let k = 0; k < this.slots; k++) ipSync(["netns", "del", this.ns(k)]);
    for (let k = 0; k < this.slots; k++) if (ipSync(["link", "show", this.veth(k)])) ipSync(["link", "del", this.veth(k)]);
    ipSync(["link", "del", this.bridge()]);
  }
}
