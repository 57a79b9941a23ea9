/**
 * The abrupt-TCP cases every HTTP server process of convene must survive
 * (issue 16 §1), as one list the edge tests of the demo server and the
 * agent sidecar run against their real process (the gateway's test has
 * its own, which also checks its /metrics). Each case is bounded (every
 * wait has a timeout) and checks afterwards that the process is the same
 * and serving, through the callback the test gives.
 *
 * What "reset" means here: the client's kernel sends RST (resetAndDestroy),
 * as a browser on a dropped network does; the server may see ECONNRESET,
 * or the data then EOF, depending on when it reads.
 */
import { expect } from "vitest";
import { type Endpoint, RawConnection, openMany, requestHead, resetAll, upgradeRequest } from "./abrupt-tcp.js";

export interface HttpServerUnderTest {
  readonly endpoint: Endpoint;
  /**
   * An upgrade the server answers at once: with 101 when `upgrades` (a
   * WebSocket it keeps open), else with its plain HTTP answer, which then
   * stands in for the 101.
   */
  readonly upgradePath: string;
  readonly upgrades: boolean;
  /** An upgrade the server holds a while before answering (a meeting it waits for), if it has one. */
  readonly slowUpgradePath?: string;
  /** A request whose body the server reads before answering. */
  readonly bodyRequest: { readonly method: string; readonly path: string; readonly contentType: string; readonly bytes: number };
  /** A GET the server answers with some KiB, and about how many bytes its answer has. */
  readonly answer: { readonly path: string; readonly bytes: number };
  /** The process is the one that started and serves (pid, health). */
  readonly expectServing: () => Promise<void>;
}

export interface BatteryCase {
  readonly name: string;
  readonly run: (server: HttpServerUnderTest) => Promise<void>;
}

const FIVE_MIB = 5 * 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function bodyHead(server: HttpServerUnderTest): string {
  const { method, path, contentType, bytes } = server.bodyRequest;
  return `${method} ${path} HTTP/1.1\r\nHost: test\r\nContent-Type: ${contentType}\r\nContent-Length: ${bytes}\r\n\r\n`;
}

async function answered(server: HttpServerUnderTest, c: RawConnection): Promise<void> {
  await c.until(server.upgrades ? "the 101" : "an answer", (x) => (server.upgrades ? x.status === 101 : x.status !== undefined));
}

export const httpBattery: readonly BatteryCase[] = [
  {
    name: "a client that resets 300 ms after its upgrade was answered",
    run: async (server) => {
      const c = await RawConnection.open(server.endpoint);
      await c.write(upgradeRequest(server.upgradePath));
      await answered(server, c);
      await sleep(300);
      c.reset();
      await server.expectServing();
    },
  },
  {
    name: "a client that resets before its upgrade is answered",
    run: async (server) => {
      // With the request itself: the server reads the request and the reset together.
      const early = await RawConnection.open(server.endpoint);
      await early.write(upgradeRequest(server.upgradePath));
      early.reset();
      if (server.slowUpgradePath) {
        // While the server waits (for a meeting it does not hold yet, say).
        const waiting = await RawConnection.open(server.endpoint);
        await waiting.write(upgradeRequest(server.slowUpgradePath));
        await sleep(100);
        waiting.reset();
      }
      await server.expectServing();
    },
  },
  {
    name: "a client that resets mid-request-body",
    run: async (server) => {
      const c = await RawConnection.open(server.endpoint);
      await c.write(bodyHead(server));
      await c.write(Buffer.alloc(Math.floor(server.bodyRequest.bytes / 2), 0x7b));
      c.reset();
      await server.expectServing();
    },
  },
  {
    name: "a client that resets mid-response (pipelined answers still being written)",
    run: async (server) => {
      const c = await RawConnection.open(server.endpoint);
      await c.write(requestHead("GET", server.answer.path).repeat(50));
      await c.until("the first answers", (x) => x.receivedBytes >= server.answer.bytes);
      c.reset();
      await server.expectServing();
    },
  },
  {
    name: "half-open clients: half a request then silence holds no one up; half a request then FIN is closed",
    run: async (server) => {
      const partials = [`GET ${server.answer.path} HTTP/1.1\r\nHost: te`, bodyHead(server) + "{".repeat(10)];
      const silent = await Promise.all(
        partials.map(async (partial) => {
          const c = await RawConnection.open(server.endpoint);
          await c.write(partial);
          return c;
        }),
      );
      await server.expectServing();
      for (const partial of partials) {
        const ended = await RawConnection.open(server.endpoint);
        await ended.write(partial);
        ended.endWrite();
        expect(await ended.closedWithin(10_000), `a half-closed connection was kept open after ${JSON.stringify(partial.slice(0, 40))}`).toBe(true);
      }
      for (const c of silent) c.destroy();
      await server.expectServing();
    },
  },
  {
    name: "200 half-sent requests reset at once",
    run: async (server) => {
      const conns = await openMany(server.endpoint, 200, `GET ${server.answer.path} HTTP/1.1\r\nHost: test\r\nX-Half: `);
      resetAll(conns);
      await server.expectServing();
    },
  },
  {
    name: "100 upgraded connections reset at once",
    run: async (server) => {
      const conns = await openMany(server.endpoint, 100, upgradeRequest(server.upgradePath), 25);
      await Promise.all(conns.map((c) => answered(server, c)));
      resetAll(conns);
      await server.expectServing();
    },
  },
  {
    name: "a client that never reads 5 MiB of answers",
    run: async (server) => {
      const c = await RawConnection.open(server.endpoint);
      // Not reading from the start: the connection's receive window stays small.
      c.stopReading();
      const count = Math.ceil(FIVE_MIB / server.answer.bytes);
      // Not awaited: a server that stops reading (its answers pile up) may never take all of it.
      void c.write(requestHead("GET", server.answer.path).repeat(count));
      await server.expectServing();
      c.destroy();
      await server.expectServing();
    },
  },
];
