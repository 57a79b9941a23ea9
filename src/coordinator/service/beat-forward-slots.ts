/**
 * How many heartbeats a follower forwards to the leader at once, over all
 * its streams and unary Heartbeat calls. A beat reaches a follower when
 * its agent could not get an answer from the leader in time (or has not
 * heard who leads yet). Forwarding helps a server cut off from the leader
 * alone, and that takes few slots; when the leader is merely slow, every
 * forwarded beat waits on the same leader and costs this member a unary
 * call (about five times a beat on a stream). With 10,000 servers beating
 * every 500 ms (`SCALE_NODES=10000 npm run bench -- scale`), unbounded
 * forwarding took both followers to a full core each once the leader was
 * late, which starved the leader of the CPU it lacked and cost it its
 * quorum. Past the limit a beat is answered at once with the leader's
 * address, which the agent follows (its next attempt goes there).
 */
export const MAX_BEATS_FORWARDED = 64;

export class BeatForwardSlots {
  private taken = 0;
  /** Beats answered with the leader's address instead of being forwarded. */
  refused = 0;

  constructor(readonly max = MAX_BEATS_FORWARDED) {}

  /**
   * Runs `forward` (a beat on its way to the leader at `leaderAddress`) in a
   * slot, given back when it settles; undefined, and nothing run, when all
   * are taken. With no leader known the forwarder answers at once (beats
   * are not held), so that needs no slot.
   */
  forward<T>(leaderAddress: string, forward: () => Promise<T>): Promise<T> | undefined {
    if (leaderAddress === "") return forward();
    if (this.taken >= this.max) {
      this.refused++;
      return undefined;
    }
    this.taken++;
    return forward().finally(() => this.taken--);
  }

  get inUse(): number {
    return this.taken;
  }
}

/** The answer to a beat past the limit: where the leader is, and why the beat did not go there from here. */
export function beatsForwardedDetails(max: number, leaderAddress: string): string {
  return `this member does not lead and already forwards ${max} heartbeats to the leader; send heartbeats to the leader at ${leaderAddress}`;
}
