/**
 * `convene events-relay`: a process of its own that posts every event of
 * Coordinator.WatchEvents to a webhook, at least once and in order.
 *
 *   - Follows the events on any member, resuming exactly where it stopped
 *     (event-watcher.ts).
 *   - Posts each event as JSON, signed, until the receiver answers 2xx
 *     (webhook-post.ts), one at a time: event n+1 is not sent before n is
 *     acknowledged.
 *   - Writes its cursor after each acknowledged event (cursor-file.ts), so
 *     a relay killed at any point starts again at the first event not
 *     acknowledged, or one before it: the receiver deduplicates by the
 *     event id.
 * Any number of relays may run, each with its own cursor file (and
 * usually its own receiver).
 */
import type { Logger } from "pino";
import type { ClientSecurity } from "../security/client-security.js";
import { type RelayCursor, readCursor, writeCursor } from "./cursor-file.js";
import type { EventBatchJson } from "./event-json.js";
import { EventWatcher } from "./event-watcher.js";
import { postUntilAcknowledged } from "./webhook-post.js";

export interface RelayOptions {
  readonly url: string;
  readonly secret: Buffer;
  readonly cursorPath: string;
  /** Where to start when there is no cursor file (or to override it): the last index already delivered; 0: the oldest kept. */
  readonly fromIndex?: number;
  readonly coordinators: readonly string[];
  readonly security: ClientSecurity;
  readonly log: Logger;
  readonly postTimeoutMs?: number;
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
}

export class RelayConfigError extends Error {
  readonly code = "CONFIG";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "RelayConfigError";
  }
}

/** Shortest shared secret accepted, in bytes. */
export const MIN_SECRET_BYTES = 16;

/** The secret as read from its file: trailing line breaks dropped; at least MIN_SECRET_BYTES. */
export function secretFrom(fileContents: Buffer, path: string): Buffer {
  let end = fileContents.length;
  while (end > 0 && (fileContents[end - 1] === 0x0a || fileContents[end - 1] === 0x0d)) end--;
  const secret = fileContents.subarray(0, end);
  if (secret.length < MIN_SECRET_BYTES) throw new RelayConfigError(`secret file ${path} must hold at least ${MIN_SECRET_BYTES} bytes, it holds ${secret.length}`);
  return secret;
}

export function validateUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new RelayConfigError("url must be an http:// or https:// URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new RelayConfigError(`url must be an http:// or https:// URL, got the scheme ${url.protocol}`);
  return url.toString();
}

/** How often a progress mark may move the cursor file (events always do). */
const PROGRESS_WRITE_MS = 1_000;

export class EventsRelay {
  private readonly stopping = new AbortController();
  private watcher: EventWatcher | undefined;
  private cursor: RelayCursor;
  private delivered = 0;

  constructor(private readonly options: RelayOptions) {
    validateUrl(options.url);
    const saved = readCursor(options.cursorPath);
    if (saved && options.fromIndex !== undefined) options.log.warn({ saved, fromIndex: options.fromIndex }, "--from overrides the cursor file");
    this.cursor = options.fromIndex !== undefined ? { index: options.fromIndex, partial: 0 } : (saved ?? { index: 0, partial: 0 });
  }

  /** What has been acknowledged so far. */
  get position(): RelayCursor {
    return this.cursor;
  }

  /** Relays until `stop` (resolves) or a fatal error (rejects: too far behind, refused, cursor not writable). */
  async run(): Promise<void> {
    const o = this.options;
    o.log.info({ url: o.url, from: this.cursor }, "relaying events");
    const watcher = new EventWatcher({ coordinators: o.coordinators, security: o.security, fromIndex: this.cursor.index, log: o.log });
    this.watcher = watcher;
    if (this.stopping.signal.aborted) return;
    let skip = this.cursor.partial;
    let lastProgressWrite = 0;
    try {
      await watcher.run(async (batch) => {
        if (batch.events.length === 0) {
          if (this.cursor.partial === 0 && batch.index > this.cursor.index && Date.now() - lastProgressWrite >= PROGRESS_WRITE_MS) {
            this.save({ index: batch.index, partial: 0 });
            lastProgressWrite = Date.now();
          }
          return;
        }
        await this.deliver(batch, skip);
        skip = 0;
      });
    } catch (err) {
      // A retry sleep cut short by stop(): not a failure.
      if (this.stopping.signal.aborted) return;
      throw err;
    } finally {
      o.log.info({ delivered: this.delivered, cursor: this.cursor }, "relay stopped");
    }
  }

  stop(): void {
    this.stopping.abort();
    this.watcher?.stop();
  }

  private async deliver(batch: EventBatchJson, skip: number): Promise<void> {
    const o = this.options;
    const last = batch.events.length - 1;
    for (let i = Math.min(skip, batch.events.length); i <= last; i++) {
      const event = batch.events[i]!;
      const attempts = await postUntilAcknowledged(event.id, JSON.stringify(event), {
        url: o.url,
        secret: o.secret,
        timeoutMs: o.postTimeoutMs ?? 10_000,
        retryBaseMs: o.retryBaseMs ?? 250,
        retryMaxMs: o.retryMaxMs ?? 30_000,
        sleep: (ms) => this.sleep(ms),
        onRetry: (attempt, why, delayMs) => o.log.warn({ id: event.id, attempt, delayMs, why }, "event not acknowledged; posting it again"),
      });
      this.delivered++;
      o.log.debug({ id: event.id, type: event.type, attempts }, "event delivered");
      this.save(i === last ? { index: batch.index, partial: 0 } : { index: this.cursor.index, partial: i + 1 });
    }
  }

  private save(cursor: RelayCursor): void {
    writeCursor(this.options.cursorPath, cursor);
    this.cursor = cursor;
  }

  private sleep(ms: number): Promise<void> {
    const signal = this.stopping.signal;
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(new Error("the relay is stopping"));
      const timer = setTimeout(() => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(new Error("the relay is stopping"));
      };
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }
}
