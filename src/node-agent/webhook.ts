/**
 * Tells the sidecar's host about assignment changes by POSTing JSON to its
 * webhook URL, one notice at a time and in order (a revoke and a later
 * assign of one meeting must not overtake each other). Each notice is tried
 * up to `attempts` times with a short doubling pause; a notice that cannot
 * be delivered is logged and skipped (the host can always read
 * GET /meetings). Used by AgentSidecar only.
 *
 * Body: {"type":"assigned"|"revoked"|"handover","meetingId","epoch","checkpoint"}
 * where checkpoint is the state as base64, or null when there is none.
 * "handover": stop writing to the meeting and POST its final state to
 * /meetings/{id}/handover (sidecar-http.ts).
 */
import type { AgentLogger } from "./agent-config.js";

export interface WebhookNotice {
  readonly type: "assigned" | "revoked" | "handover";
  readonly meetingId: string;
  readonly epoch: number;
  /** base64 of the checkpoint's state, or null. */
  readonly checkpoint: string | null;
}

export interface WebhookOptions {
  readonly url: string;
  readonly timeoutMs: number;
  readonly attempts: number;
  readonly retryMs: number;
}

export class WebhookNotifier {
  private tail: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly options: WebhookOptions,
    private readonly log: AgentLogger,
  ) {}

  /** Queues a notice behind every earlier one. */
  notify(notice: WebhookNotice): void {
    if (this.closed) return;
    this.tail = this.tail.then(() => this.deliver(notice));
  }

  /** Resolves once every queued notice was delivered or given up. */
  idle(): Promise<void> {
    return this.tail;
  }

  /** Takes no more notices; resolves once the queued ones were delivered or given up. */
  async close(): Promise<void> {
    this.closed = true;
    await this.tail;
  }

  private async deliver(notice: WebhookNotice): Promise<void> {
    const body = JSON.stringify(notice);
    for (let attempt = 1; attempt <= this.options.attempts; attempt++) {
      try {
        const res = await fetch(this.options.url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
          signal: AbortSignal.timeout(this.options.timeoutMs),
        });
        await res.body?.cancel();
        if (res.ok) return;
        this.log.warn({ status: res.status, attempt, type: notice.type, meetingId: notice.meetingId }, "webhook answered an error");
      } catch (err) {
        this.log.warn({ err, attempt, type: notice.type, meetingId: notice.meetingId }, "webhook unreachable");
      }
      if (attempt < this.options.attempts) await new Promise((r) => setTimeout(r, this.options.retryMs * 2 ** (attempt - 1)).unref());
    }
    this.log.error({ type: notice.type, meetingId: notice.meetingId, epoch: notice.epoch }, "webhook notice not delivered; giving up on it");
  }
}
