/**
 * The gateway's side of the node address policy
 * (src/security/node-address-policy.ts): it re-checks every route's
 * address before it connects, whatever the members accepted (a member with
 * another allow list, or a registration older than the policy).
 *
 * Two checks:
 * - `check(route)`, when a route is resolved for proxying (RouteResolver):
 *   an IP address or "localhost" is judged at once, with its port, against
 *   the policy and the gateway's own addresses (its listen address and its
 *   members'); a refusal is NodeAddressRefusedError (502, JSON), counted in
 *   convene_gateway_node_address_refused_total. Verdicts are kept per
 *   address, so the hot path is one map lookup.
 * - `lookup`, the DNS lookup of every connection the proxies open: a host
 *   name's addresses are filtered by the policy's address rules (without
 *   the port, which a lookup is not told), and the connection goes only to
 *   an address that passed, so a name cannot be re-pointed (DNS
 *   rebinding) at a link-local or unspecified address after the check.
 *   A name whose every address is refused fails the connection with
 *   ERR_NODE_ADDRESS_REFUSED (503 like any failed host, and counted).
 */
import { type LookupAddress, type LookupAllOptions, type LookupOneOptions, lookup as dnsLookup } from "node:dns";
import type { LookupFunction } from "node:net";
import { networkInterfaces } from "node:os";
import type { Logger } from "pino";
import { type AddressVerdict, type Cidr, NodeAddressPolicy } from "../security/node-address-policy.js";
import { NodeAddressRefusedError } from "./errors.js";
import type { GatewayMetrics } from "./metrics.js";
import type { Route } from "./route-cache.js";

/** Verdicts kept at most; the map starts over beyond (addresses are few: one per meeting server). */
const MAX_VERDICTS = 10_000;
/** No listener has this port: a lookup's check judges the address alone. */
const ANY_PORT = -1;

export interface NodeAddressGuardOptions {
  readonly allow: readonly Cidr[] | undefined;
  /** The gateway's own listen address and its members' (read when first needed: the port is known once listening). */
  readonly ownAddresses: () => readonly string[];
}

export class NodeAddressGuard {
  private policyCache: NodeAddressPolicy | undefined;
  private readonly verdicts = new Map<string, AddressVerdict>();

  constructor(
    private readonly options: NodeAddressGuardOptions,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
  ) {}

  /** Throws NodeAddressRefusedError when `route`'s address may not be connected to. */
  check(route: Route): void {
    let v = this.verdicts.get(route.address);
    if (v === undefined) {
      v = this.policy().checkAddress(route.address);
      if (!v.ok) this.logger.warn({ node: route.nodeId, address: route.address, reason: v.reason }, "refused to proxy to a node address");
      if (this.verdicts.size >= MAX_VERDICTS) this.verdicts.clear();
      this.verdicts.set(route.address, v);
    }
    if (v.ok) return;
    this.metrics.nodeAddressesRefused.labels(v.reason).inc();
    throw new NodeAddressRefusedError(`meeting ${route.meetingId}: its host ${route.nodeId} registered the address ${v.message}; nothing was sent to it`);
  }

  /** The lookup for the proxies' connections (net.connect's `lookup` option). */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    const all = (options as LookupAllOptions).all === true;
    dnsLookup(hostname, { ...(options as LookupOneOptions), all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, all ? [] : "", 0);
      const policy = this.policy();
      const allowed = addresses.filter((a) => policy.checkIp(a.address, ANY_PORT).ok);
      if (allowed.length === 0) {
        const v = policy.checkIp(addresses[0]?.address ?? "", ANY_PORT, `${hostname} (resolved to ${addresses.map((a) => a.address).join(", ")})`);
        const reason = v.ok ? "not_allowed" : v.reason;
        this.metrics.nodeAddressesRefused.labels(reason).inc();
        this.logger.warn({ hostname, addresses, reason }, "refused to connect to a node's host name");
        const refusal = Object.assign(new Error(v.ok ? `${hostname} resolved to no address` : v.message), { code: "ERR_NODE_ADDRESS_REFUSED" });
        return callback(refusal, all ? [] : "", 0);
      }
      if (all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, allowed);
      callback(null, allowed[0]!.address, allowed[0]!.family);
    });
  };

  private policy(): NodeAddressPolicy {
    this.policyCache ??= new NodeAddressPolicy({
      allow: this.options.allow,
      ownAddresses: this.options.ownAddresses(),
      localAddresses: Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address)),
    });
    return this.policyCache;
  }
}
