/**
 * One event, POSTed to the receiver until it acknowledges (2xx): signed,
 * retried with a jittered exponential backoff for as long as it takes (a
 * relay delivers in order, so it cannot skip an event the receiver keeps
 * refusing; it says so in its log at every attempt).
 *
 * Headers:
 *   Content-Type: application/json
 *   X-Convene-Event-Id: <index>:<position>     the receiver deduplicates by it
 *   X-Convene-Timestamp: <ms since the epoch>  when this attempt was signed
 *   X-Convene-Signature: sha256=<hex>          HMAC-SHA256 with the shared secret of
 *                                              "<timestamp>.<body>"
 * A receiver recomputes the HMAC over the timestamp header, a dot and the
 * raw body, compares in constant time, and may refuse old timestamps.
 */
import { createHmac } from "node:crypto";

export const EVENT_ID_HEADER = "x-convene-event-id";
export const TIMESTAMP_HEADER = "x-convene-timestamp";
export const SIGNATURE_HEADER = "x-convene-signature";

/** The signature header's value for `body` signed at `timestamp`. */
export function signature(secret: Buffer, timestamp: string, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`;
}

export interface PostOptions {
  readonly url: string;
  readonly secret: Buffer;
  readonly timeoutMs: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  /** Resolves after `ms`; rejects when the relay stops (ending the retries). */
  readonly sleep: (ms: number) => Promise<void>;
  readonly random?: () => number;
  readonly onRetry?: (attempt: number, why: string, delayMs: number) => void;
}

/** Posts until a 2xx answer; rejects only when `sleep` does (the relay stopped). */
export async function postUntilAcknowledged(id: string, body: string, o: PostOptions): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const timestamp = String(Date.now());
    let why: string;
    try {
      const res = await fetch(o.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          [EVENT_ID_HEADER]: id,
          [TIMESTAMP_HEADER]: timestamp,
          [SIGNATURE_HEADER]: signature(o.secret, timestamp, body),
        },
        body,
        signal: AbortSignal.timeout(o.timeoutMs),
      });
      await res.body?.cancel();
      if (res.status >= 200 && res.status < 300) return attempt;
      why = `the receiver answered ${res.status}`;
    } catch (err) {
      why = `the receiver could not be reached: ${(err as Error).message}`;
    }
    const ceiling = Math.min(o.retryMaxMs, o.retryBaseMs * 2 ** Math.min(attempt - 1, 20));
    const delay = Math.max(1, Math.floor(ceiling / 2 + ((o.random ?? Math.random)() * ceiling) / 2));
    o.onRetry?.(attempt, why, delay);
    await o.sleep(delay);
  }
}
