/**
 * The chaos run's security, set up the way a deployment beyond loopback
 * must be: TLS on every gRPC link, client certificates required (mutual
 * TLS), and a bearer token on every call. Made once per run, before any
 * process starts, into `<runDir>/security/` with the `convene certs`
 * library (src/security/certs.ts):
 *
 *   ca.crt                    every process verifies the other side with it
 *   <member id>.crt/.key      one member certificate per member id (CN=id,
 *                             so a member's certificate speaks for it alone),
 *                             issued when the member first starts, for the
 *                             slot it runs in: a replacement gets its own for
 *                             the spare slot. SANs: every address the slot is
 *                             reached by (its 10.x netns address, or
 *                             127.0.0.1 in proxy mode)
 *   gateway, operator         client certificates and tokens (the operator's
 *                             for this process's checkers and the CLI calls)
 *   agent-m<i>.crt/.key       one per meeting server slot
 *   tokens.yaml               what every member reads: the operator's token,
 *                             the gateway's (members know each other by
 *                             certificate, so no member token), and one agent token
 *                             per node id a server may register under: its
 *                             slot name, and the fresh ids a restart takes
 *                             when flap damping holds the old one out
 *                             (`freshNodeId`), as many as the fault plan can
 *                             need, at most FRESH_IDS_MAX per slot
 *
 * Tokens go to child processes in $CONVENE_TOKEN, never on a command line.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml, stringify as toYaml } from "yaml";
import { existsSync } from "node:fs";
import { issueMemberCertificate, newToken, writeCerts } from "../../src/security/certs.js";
import { type ClientSecurity, clientSecurity } from "../../src/security/client-security.js";
import { hostOfAddress } from "../../src/security/listen-policy.js";
import { readTlsFiles } from "../../src/security/tls-files.js";
import type { MemberNetwork } from "./network.js";
import { type ChaosOptions, serverName } from "./options.js";
import { killServerBound } from "./plan.js";

/** Fresh node ids with an agent token, per meeting server slot, at most. */
export const FRESH_IDS_MAX = 100;

/** Certificate days: a run is short; a day leaves room for clocks. */
const DAYS = 2;

/** What a client process is given: files for TLS and its token. */
export interface ClientCredentials {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
  /** Empty for a member, which is known by its certificate alone. */
  readonly token: string;
}

export interface SecurityPlan {
  /** Member slots, the spare included. */
  readonly slots: number;
  /** Meeting server slot names (m1, m2, ...): their first node ids. */
  readonly servers: readonly string[];
  /** Fresh node ids each server slot may need (the fault plan's bound); capped at FRESH_IDS_MAX. */
  readonly freshIdsPerServer: number;
}

/** The fresh node id number `n` (1, 2, ...) of server slot `name`: m1 is the slot's first id, m1.2 its first fresh one. */
export function freshNodeId(name: string, n: number): string {
  return `${name}.${n + 1}`;
}

/** Every host the member in `slot` is dialed at: by clients, by each peer, and as advertised to `members add`. */
function hostsOfSlot(network: MemberNetwork, slot: number, slots: number): string[] {
  const addresses = [network.listenAddress(slot), network.clientAddress(slot), network.advertisedAddress(slot)];
  for (let from = 0; from < slots; from++) addresses.push(network.peerAddress(from, slot));
  return [...new Set(addresses.map(hostOfAddress))];
}

export class ChaosSecurity {
  /** For the run's output, next to the partitions line. */
  readonly description = "TLS + tokens (client certificates required, every gRPC link)";

  private constructor(
    readonly dir: string,
    private readonly network: MemberNetwork,
    private readonly slots: number,
    private readonly agentTokens: ReadonlyMap<string, string>,
    private readonly tokenOf: Readonly<Record<"operator" | "gateway", string>>,
    readonly freshIdsPerServer: number,
  ) {}

  /**
   * Writes the CA, certificates and tokens file into `dir` (created; must
   * not hold them yet). Synchronous: RSA keys for the CA, each slot and
   * each client, about a second in all. Called once the network is open
   * (the SANs are its addresses) and before any process starts.
   */
  static create(dir: string, network: MemberNetwork, plan: SecurityPlan): ChaosSecurity {
    // The CA and the clients' files; member certificates come per member id, in memberFlags.
    writeCerts({ outDir: dir, members: [], agents: plan.servers, days: DAYS, force: false });
    const read = (name: string): string => readFileSync(join(dir, `${name}.token`), "utf8").trim();
    const agentTokens = new Map(plan.servers.map((name) => [name, read(`agent-${name}`)]));
    const fresh = Math.max(0, Math.min(FRESH_IDS_MAX, plan.freshIdsPerServer));
    const tokensFile = join(dir, "tokens.yaml");
    const doc = parseYaml(readFileSync(tokensFile, "utf8")) as { tokens: Record<string, string>[] };
    for (const name of plan.servers) {
      for (let n = 1; n <= fresh; n++) {
        const nodeId = freshNodeId(name, n);
        const token = newToken();
        agentTokens.set(nodeId, token);
        doc.tokens.push({ role: "agent", node: nodeId, token, name: `agent-${nodeId}` });
      }
    }
    // Members know each other by certificate (--require-client-cert): no member token.
    doc.tokens = doc.tokens.filter((e) => e.role !== "member");
    writeFileSync(tokensFile, `# chaos run: convene certs' tokens, plus agent tokens for fresh node ids\n${toYaml(doc)}`, { mode: 0o600 });
    return new ChaosSecurity(dir, network, plan.slots, agentTokens, { operator: read("operator"), gateway: read("gateway") }, fresh);
  }

  get caFile(): string {
    return join(this.dir, "ca.crt");
  }

  get tokensFile(): string {
    return join(this.dir, "tokens.yaml");
  }

  /** The security flags of `convene member` for member `id` in `slot`; its certificate is issued on first use. */
  memberFlags(id: string, slot: number): string[] {
    this.memberCertificate(id, slot);
    return [
      "--cert", join(this.dir, `${id}.crt`), "--key", join(this.dir, `${id}.key`), "--ca", this.caFile,
      "--tokens", this.tokensFile, "--require-client-cert",
    ];
  }

  private client(file: string, token: string): ClientCredentials {
    return { ca: this.caFile, cert: join(this.dir, `${file}.crt`), key: join(this.dir, `${file}.key`), token };
  }

  operator(): ClientCredentials {
    return this.client("operator", this.tokenOf.operator);
  }

  gateway(): ClientCredentials {
    return this.client("gateway", this.tokenOf.gateway);
  }

  /** Member `id`'s own credentials (its certificate, no token): for reproductions that speak as a member. */
  member(id: string, slot: number): ClientCredentials {
    this.memberCertificate(id, slot);
    return this.client(id, "");
  }

  /** Issues member `id`'s certificate for the addresses of `slot`, once. */
  private memberCertificate(id: string, slot: number): void {
    if (existsSync(join(this.dir, `${id}.crt`))) return;
    issueMemberCertificate(this.dir, { id, hosts: hostsOfSlot(this.network, slot, this.slots) }, DAYS);
  }

  /** The meeting server in slot `serverName` registering as `nodeId`: the slot's certificate, the node id's token. */
  agent(serverName: string, nodeId: string): ClientCredentials {
    const token = this.agentTokens.get(nodeId);
    if (token === undefined) {
      throw new Error(`no agent token for node id ${nodeId}: the tokens file has ${serverName} and ${this.freshIdsPerServer} fresh ids per server slot (at most ${FRESH_IDS_MAX})`);
    }
    return this.client(`agent-${serverName}`, token);
  }

  /** Whether `nodeId` has an agent token (a fresh id can be taken). */
  hasAgentToken(nodeId: string): boolean {
    return this.agentTokens.has(nodeId);
  }
}

/** The environment of a child process acting with `c`: the CLI reads all four, gateways and meeting servers the token. */
export function credentialsEnv(c: ClientCredentials): NodeJS.ProcessEnv {
  return { ...process.env, CONVENE_CA: c.ca, CONVENE_CERT: c.cert, CONVENE_KEY: c.key, CONVENE_TOKEN: c.token };
}

/** Loads `c` for a gRPC client in this process (rpc.ts); an empty token sends none. */
export function loadCredentials(c: ClientCredentials): ClientSecurity {
  return clientSecurity(readTlsFiles({ ca: c.ca, cert: c.cert, key: c.key }), c.token === "" ? undefined : c.token);
}

/**
 * The security of a run of `options` on `network`, written into
 * `<runDir>/security`: every member slot, every server slot, and as many
 * fresh node ids per server slot as the fault plan can need.
 */
export function runSecurity(runDir: string, network: MemberNetwork, options: ChaosOptions): ChaosSecurity {
  return ChaosSecurity.create(join(runDir, "security"), network, {
    slots: options.members + 1,
    servers: Array.from({ length: options.servers }, (_, i) => serverName(i)),
    freshIdsPerServer: killServerBound(options.seed, options.durationS, options.meanGapMs),
  });
}
