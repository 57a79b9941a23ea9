/**
 * Measures the round trip to every peer member, as etcd's prober does for
 * etcd_network_peer_round_trip_time_seconds: every `everyMs`, one gRPC
 * health check (grpc.health.v1.Health/Check, open to all, answered without
 * touching Raft) to each peer, on a channel of its own (not the Raft
 * streams', so a busy stream does not delay it and it does not delay the
 * stream). Off the Raft loop entirely.
 */
import * as grpc from "@grpc/grpc-js";
import type { ClientSecurity } from "../security/client-security.js";

const CHECK_PATH = "/grpc.health.v1.Health/Check";
/** HealthCheckRequest { service: "" }: every field at its default, so no bytes. */
const EMPTY_REQUEST = Buffer.alloc(0);

export class PeerProber {
  private readonly clients = new Map<string, { address: string; client: grpc.Client }>();
  private readonly timer: NodeJS.Timeout;
  private probing = false;

  constructor(
    private readonly selfId: string,
    /** Every member's address as this member knows it now. */
    private readonly peers: () => ReadonlyMap<string, string>,
    private readonly security: ClientSecurity,
    /** Told each peer's round trip in seconds, or undefined when it did not answer within `timeoutMs`. */
    private readonly report: (peer: string, seconds: number | undefined) => void,
    everyMs = 5_000,
    private readonly timeoutMs = 2_000,
  ) {
    this.timer = setInterval(() => void this.probeAll(), everyMs);
    this.timer.unref();
  }

  private async probeAll(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      const peers = [...this.peers()].filter(([id]) => id !== this.selfId);
      for (const [id, entry] of this.clients) {
        if (!peers.some(([peer, address]) => peer === id && address === entry.address)) {
          entry.client.close();
          this.clients.delete(id);
        }
      }
      await Promise.all(peers.map(([id, address]) => this.probe(id, address)));
    } finally {
      this.probing = false;
    }
  }

  private probe(peer: string, address: string): Promise<void> {
    let entry = this.clients.get(peer);
    if (!entry) {
      entry = { address, client: new grpc.Client(address, this.security.credentials, { "grpc.use_local_subchannel_pool": 1 }) };
      this.clients.set(peer, entry);
    }
    const started = performance.now();
    return new Promise((resolve) => {
      entry.client.makeUnaryRequest(
        CHECK_PATH,
        () => EMPTY_REQUEST,
        (bytes: Buffer) => bytes,
        {},
        { deadline: Date.now() + this.timeoutMs },
        (err) => {
          this.report(peer, err ? undefined : (performance.now() - started) / 1000);
          resolve();
        },
      );
    });
  }

  close(): void {
    clearInterval(this.timer);
    for (const { client } of this.clients.values()) client.close();
    this.clients.clear();
  }
}
