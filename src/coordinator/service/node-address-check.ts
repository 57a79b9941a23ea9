/**
 * The members' side of the node address policy (src/security/
 * node-address-policy.ts): NodeAgent.Register refuses an address the
 * policy refuses, with INVALID_ARGUMENT naming the address and the rule.
 *
 * Checked in the gRPC handler, before proposing, never in apply: the
 * policy depends on this member's flags (--node-address-allow) and on DNS,
 * while apply must decide the same on every member. A follower checks
 * with its policy and then forwards, and the leader checks again with its
 * own: give every member the same allow list.
 *
 * Host names: without an allow list only the cluster's own names are
 * refused (the gateway checks every address it actually connects to);
 * with one, the name must resolve, within RESOLVE_TIMEOUT_MS, to allowed
 * addresses only.
 */
import { lookup } from "node:dns/promises";
import { networkInterfaces } from "node:os";
import { NodeAddressPolicy, type Cidr } from "../../security/node-address-policy.js";
import { hostOfAddress } from "../../security/listen-policy.js";
import { InvalidArgumentError } from "../errors.js";

/** How long Register waits for a node's host name to resolve. */
export const RESOLVE_TIMEOUT_MS = 2_000;

/** Resolves a host name to its addresses (dns.lookup, every family). */
export type Resolve = (host: string) => Promise<string[]>;

export const systemResolve: Resolve = async (host) => (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/** Every address of this host's interfaces: what a member listening on a wildcard answers on. */
export function interfaceAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
}

export interface NodeAddressCheckOptions {
  /** --node-address-allow; undefined: any address the policy does not refuse always. */
  readonly allow: readonly Cidr[] | undefined;
  /** The cluster's own listen addresses now: this member's, and its peers' (which change with membership). */
  readonly ownAddresses: () => readonly string[];
  readonly localAddresses?: readonly string[];
  readonly resolve?: Resolve;
}

export class NodeAddressCheck {
  private readonly resolve: Resolve;
  private policy: NodeAddressPolicy | undefined;
  private policyFor = "";

  constructor(private readonly options: NodeAddressCheckOptions) {
    this.resolve = options.resolve ?? systemResolve;
  }

  /** Resolves when `address` (valid "host:port") may be registered. @throws InvalidArgumentError naming field `address`. */
  async check(address: string): Promise<void> {
    const policy = this.current();
    const verdict = policy.checkAddress(address);
    if (!verdict.ok) throw new InvalidArgumentError(`address ${verdict.message}`);
    if (!verdict.resolve || !policy.hasAllowList) return;
    const host = hostOfAddress(address);
    let ips: string[];
    try {
      ips = await withTimeout(this.resolve(host), RESOLVE_TIMEOUT_MS);
    } catch (err) {
      throw new InvalidArgumentError(`address ${address}: host ${host} does not resolve (${(err as Error).message}); with node-address-allow set, a host name must resolve to allowed addresses`);
    }
    const port = Number(address.slice(address.lastIndexOf(":") + 1));
    for (const ip of ips) {
      const v = policy.checkIp(ip, port, `${address} (resolved to ${ip})`);
      if (!v.ok) throw new InvalidArgumentError(`address ${v.message}`);
    }
  }

  /** The policy for the group as it is now (rebuilt when its addresses change). */
  private current(): NodeAddressPolicy {
    const own = this.options.ownAddresses();
    const key = own.join(",");
    if (!this.policy || key !== this.policyFor) {
      this.policy = new NodeAddressPolicy({ allow: this.options.allow, ownAddresses: own, localAddresses: this.options.localAddresses ?? interfaceAddresses() });
      this.policyFor = key;
    }
    return this.policy;
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    timer.unref();
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
