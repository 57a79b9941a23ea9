/**
 * Abrupt TCP behaviour against a real server process, for the edge tests
 * (test/abrupt-*.test.ts): connections reset (RST, not FIN) before and
 * after a WebSocket upgrade, mid-request-body and mid-response; half-open
 * ones (half a request, then silence, or the write side ended); hundreds
 * reset at once; a client that stops reading. Bytes are written as given
 * (raw-http.ts parses what comes back). Every wait is bounded and driven
 * by socket events, never by a fixed sleep; nothing here throws on a
 * socket event (a reset is the point).
 *
 * Plus what the tests check afterwards: whether a pid is alive and its
 * resident memory (Linux /proc).
 */
import { readFileSync } from "node:fs";
import { type Socket, connect } from "node:net";
import { type RawResponse, parseResponse } from "./raw-http.js";

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

/** A raw TCP connection and everything it received. */
export class RawConnection {
  private readonly chunks: Buffer[] = [];
  private waiters = new Set<() => void>();
  /** Bytes received so far. */
  receivedBytes = 0;
  /** The connection is gone (closed or reset, by either side). */
  closed = false;
  /** A socket error code, e.g. ECONNRESET when the server reset. */
  error: string | undefined;

  private constructor(readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => {
      // A client that "never reads" pauses the socket: nothing arrives here then.
      this.chunks.push(chunk);
      this.receivedBytes += chunk.length;
      this.wake();
    });
    socket.on("error", (err: NodeJS.ErrnoException) => (this.error = err.code ?? err.message));
    socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
  }

  /** Connects; rejects if the connection is not up within `timeoutMs`. */
  static open(to: Endpoint, timeoutMs = 5_000): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: to.host, port: to.port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`no connection to ${to.host}:${to.port} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once("connect", () => {
        clearTimeout(timer);
        socket.removeListener("error", fail);
        resolve(new RawConnection(socket));
      });
      const fail = (err: Error): void => {
        clearTimeout(timer);
        reject(err);
      };
      socket.once("error", fail);
    });
  }

  /** Everything received, as one buffer. */
  get received(): Buffer {
    if (this.chunks.length > 1) this.chunks.splice(0, this.chunks.length, Buffer.concat(this.chunks));
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  /** The first complete response but interim ones (100 Continue), if it arrived. */
  get response(): RawResponse | undefined {
    let buf = this.received;
    for (;;) {
      const parsed = parseResponse(buf, false, this.closed);
      if (parsed === undefined || parsed === "garbage") return undefined;
      const { status } = parsed.response;
      if (status >= 200 || status === 101) return parsed.response;
      buf = buf.subarray(parsed.length);
    }
  }

  /** Status of the first response once its head arrived (the body may still be coming). */
  get status(): number | undefined {
    const match = /^HTTP\/1\.[01] (\d{3})/.exec(this.received.subarray(0, 16).toString("latin1"));
    return match && this.received.includes("\r\n\r\n") ? Number(match[1]) : undefined;
  }

  /** Writes; resolves once the bytes are handed to the kernel (or the socket is gone). */
  write(bytes: string | Buffer): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.write(bytes, () => resolve());
    });
  }

  /** Ends our write side (FIN): half-open from the server's point of view. */
  endWrite(): void {
    if (!this.socket.destroyed) this.socket.end();
  }

  /** Stops reading: what the server sends piles up in its buffers and ours. */
  stopReading(): void {
    this.socket.pause();
  }

  /** Reads again after stopReading(): what piled up in the kernel arrives now. */
  startReading(): void {
    this.socket.resume();
  }

  /** TCP reset: the server gets ECONNRESET, as from a browser on a dropped network. */
  reset(): void {
    if (!this.socket.destroyed) this.socket.resetAndDestroy();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Resolves once `ready()` holds (checked on every received chunk and on close); rejects after `timeoutMs`. */
  until(what: string, ready: (c: RawConnection) => boolean, timeoutMs = 10_000): Promise<void> {
    if (ready(this)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!ready(this)) {
          if (this.closed) finish(new Error(`connection closed before ${what}${this.error ? ` (${this.error})` : ""}; got ${this.shown()}`));
          return;
        }
        finish();
      };
      const timer = setTimeout(() => finish(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${this.shown()}`)), timeoutMs);
      const finish = (err?: Error): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
        if (err) reject(err);
        else resolve();
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Resolves once the connection is gone, or after `timeoutMs` with false. */
  closedWithin(timeoutMs: number): Promise<boolean> {
    return this.until("close", (c) => c.closed, timeoutMs).then(
      () => true,
      () => this.closed,
    );
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  private shown(): string {
    const text = this.received.subarray(0, 200).toString("latin1");
    return this.receivedBytes === 0 ? "nothing" : `${this.receivedBytes} bytes: ${JSON.stringify(text)}`;
  }
}

/** A WebSocket upgrade request (RFC 6455 §4.1) for `path`. */
export function upgradeRequest(path: string, host = "test"): string {
  return [
    `GET ${path} HTTP/1.1`,
    `Host: ${host}`,
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version: 13",
    "",
    "",
  ].join("\r\n");
}

/** An HTTP/1.1 request head; `contentLength` announces a body (sent separately, or not). */
export function requestHead(method: string, path: string, options: { contentLength?: number; chunked?: boolean; close?: boolean; host?: string } = {}): string {
  const lines = [`${method} ${path} HTTP/1.1`, `Host: ${options.host ?? "test"}`];
  if (options.contentLength !== undefined) lines.push(`Content-Length: ${options.contentLength}`, "Content-Type: application/octet-stream");
  if (options.chunked) lines.push("Transfer-Encoding: chunked", "Content-Type: application/octet-stream");
  if (options.close) lines.push("Connection: close");
  return `${lines.join("\r\n")}\r\n\r\n`;
}

/** Opens `count` connections, `concurrency` at a time; each gets `payload` written (whole) before the next batch. */
export async function openMany(to: Endpoint, count: number, payload: string | Buffer | undefined, concurrency = 50): Promise<RawConnection[]> {
  const out: RawConnection[] = [];
  for (let i = 0; i < count; i += concurrency) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(concurrency, count - i) }, async () => {
        const c = await RawConnection.open(to);
        if (payload !== undefined) await c.write(payload);
        return c;
      }),
    );
    out.push(...batch);
  }
  return out;
}

/** Resets every connection in one synchronous loop: the server sees them all go at once. */
export function resetAll(connections: readonly RawConnection[]): void {
  for (const c of connections) c.reset();
}

/** Whether a process with this pid exists (signal 0). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Resident memory of a process in bytes (VmRSS of /proc/<pid>/status; Linux). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!match) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

export const MiB = 1024 * 1024;

/** The value of one sample of a Prometheus text exposition (0 when absent): `name` with exactly these labels. */
export function metricValue(exposition: string, name: string, labels: Readonly<Record<string, string>> = {}): number {
  const wanted = Object.entries(labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}="${v}"`)
    .join(",");
  for (const line of exposition.split("\n")) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const got = (match[2] ?? "")
      .split(/,(?=[a-zA-Z_]+=")/)
      .filter((s) => s !== "")
      .sort()
      .join(",");
    if (got === wanted) return Number(match[3]);
  }
  return 0;
}

/**
 * Polls `probe` every `intervalMs` until `accept` holds; throws after
 * `timeoutMs` with the last value, or at once when `fatal()` names a reason
 * to stop (the process under test exited, say). Usable in hooks, where
 * expect.poll is not.
 */
export async function pollUntil<T>(
  what: string,
  probe: () => T | Promise<T>,
  accept: (value: T) => boolean,
  options: { timeoutMs?: number; intervalMs?: number; fatal?: () => string | undefined } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  let last: T | undefined;
  let lastError: unknown;
  for (;;) {
    const stop = options.fatal?.();
    if (stop) throw new Error(`while waiting for ${what}: ${stop}`);
    try {
      last = await probe();
      if (accept(last)) return last;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}; last value ${JSON.stringify(last)}${lastError ? `, last error ${String(lastError)}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 50));
  }
}
