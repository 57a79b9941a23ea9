/**
 * How members are wired, and how partitions between them are made real.
 * Members live in numbered slots (one more slot than members: the spare
 * that a replacement moves into); a slot keeps its address for the whole
 * run, whoever occupies it.
 *
 * Two implementations: NetnsNetwork (each slot a network namespace with its
 * own 10.x address on a bridge; cuts are link downs and blackhole routes)
 * and ProxyNetwork (every member on 127.0.0.1, each member's peer addresses
 * pointing at fault-injecting TCP proxies run by this process). `openNetwork`
 * picks one.
 */
import { NetnsNetwork } from "./netns-network.js";
import type { PartitionChoice } from "./options.js";
import { ProxyNetwork } from "./proxy-network.js";

export interface MemberNetwork {
  /** For the report: "network namespaces" or "TCP proxy". */
  readonly mechanism: string;
  /** Address the member in `slot` binds. */
  listenAddress(slot: number): string;
  /** Address gateways, meeting servers and this process use for `slot`. */
  clientAddress(slot: number): string;
  /** Address the member in slot `from` uses for the member in slot `to` (its --peers entry). */
  peerAddress(from: number, to: number): string;
  /** Address given to `convene members add` for a member joining in `slot` (replicated to every member). */
  advertisedAddress(slot: number): string;
  /** What to put before `node ...` to run a member in `slot`. */
  commandPrefix(slot: number): string[];
  /** Cuts the member in `slot` off from everyone (for namespaces: clients too). */
  isolate(slot: number): Promise<void>;
  /** Cuts the link between two members, both ways; each still reaches everyone else. */
  cutLink(a: number, b: number): Promise<void>;
  /** Undoes every cut. */
  healAll(): Promise<void>;
  /** Removes everything set up; idempotent, and `closeSync` is safe in an exit handler. */
  close(): Promise<void>;
  closeSync(): void;
}

export interface NetworkPlan {
  readonly slots: number;
  /** Base TCP port for proxy mode (member k listens on base + k). */
  readonly basePort: number;
  readonly log: (line: string) => void;
}

/**
 * The first of the ~300 ports a run uses (members, proxies, then servers
 * and gateways from +250), by pid so concurrent runs rarely collide. Kept
 * below Linux's ephemeral range (32768–60999 by default): a port in it can
 * already be held by an outgoing connection (EADDRINUSE at start).
 */
export function runBasePort(pid = process.pid): number {
  return 20_000 + (pid % 40) * 300;
}

/** Opens the network `choice` asks for; "auto" falls back to the proxy when namespaces cannot be made. */
export async function openNetwork(choice: PartitionChoice, plan: NetworkPlan): Promise<MemberNetwork> {
  if (choice === "proxy") return ProxyNetwork.open(plan);
  try {
    return await NetnsNetwork.open(plan);
  } catch (err) {
    if (choice === "netns") throw err;
    plan.log(`network namespaces unavailable (${(err as Error).message.split("\n")[0]}); using the TCP proxy`);
    return ProxyNetwork.open(plan);
  }
}
