/**
 * A GetRoute answer that comes back after the feed moved the meeting on
 * (whole-product simulation seeds 404780 and 405207): the feed delivered
 * epoch N+1 and then dropped the meeting (its new node died as well)
 * while a GetRoute read before the move was in flight. Its epoch-N answer
 * must not be cached: the gateway would route to a placement older than
 * one its feed delivered. The resolver asks again instead. And the other
 * way round (seed 610256): an answer read at a revision the feed has not
 * reached is newer than the feed's changes to that meeting up to it.
 */
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { CoordinatorClient } from "../src/gateway/coordinator-client.js";
import { UpstreamUnavailableError } from "../src/gateway/errors.js";
import { GatewayMetrics } from "../src/gateway/metrics.js";
import { RouteCache } from "../src/gateway/route-cache.js";
import { RouteResolver } from "../src/gateway/route-resolver.js";

const ch = (meeting_id: string, node_id: string, epoch: number) => ({ meeting_id, node_id, address: node_id ? `127.0.0.1:${epoch + 1000}` : "", epoch: node_id ? epoch : 0 });
const route = (nodeId: string, epoch: number) => ({ meetingId: "m", nodeId, address: `127.0.0.1:${epoch + 1000}`, epoch });

describe("route lookups against the feed", () => {
  it("refuses an answer older than a route the feed brought and dropped while the call was in flight", () => {
    const cache = new RouteCache();
    cache.applyBatch(1, false, [ch("m", "n1", 1)]);
    const lookup = cache.beginLookup("m");
    cache.applyBatch(2, false, [ch("m", "n2", 2)]);
    cache.applyBatch(3, false, [ch("m", "", 0)]);
    expect(lookup.answer(route("n1", 1))).toBeUndefined();
    expect(cache.get("m")).toBeUndefined();
  });

  it("refuses it after a reset table that lacks the meeting, and after the proxy forgot the newer route", () => {
    const cache = new RouteCache();
    const a = cache.beginLookup("m");
    cache.applyBatch(5, false, [ch("m", "n2", 2)]);
    cache.applyBatch(9, true, []);
    expect(a.answer(route("n1", 1))).toBeUndefined();
    cache.applyBatch(10, false, [ch("m", "n3", 3)]);
    const b = cache.beginLookup("m");
    cache.forget(route("n3", 3));
    expect(b.answer(route("n2", 2))).toBeUndefined();
    // The same placement again is accepted: the coordinator has not yet noticed its host is gone.
    expect(cache.beginLookup("m").answer(route("n3", 3))).toMatchObject({ nodeId: "n3", epoch: 3 });
  });

  it("stores an answer as new as anything seen, and leaves nothing behind once lookups end", () => {
    const cache = new RouteCache();
    const a = cache.beginLookup("m");
    const b = cache.beginLookup("m");
    cache.applyBatch(1, false, [ch("m", "n2", 2)]);
    expect(a.answer(route("n2", 2))).toMatchObject({ nodeId: "n2", epoch: 2 });
    expect(b.answer(route("n4", 4))).toMatchObject({ nodeId: "n4", epoch: 4 });
    cache.beginLookup("x").abandon();
    expect((cache as unknown as { lookups: Map<string, unknown> }).lookups.size).toBe(0);
  });

  it("a lagging feed's older changes to a meeting answered at a newer revision are skipped: its old epochs, its removal, the epoch after", () => {
    // Whole-product simulation seed 610256: the answer (epoch 4, read at revision 218) came while the feed was at 51.
    const cache = new RouteCache();
    cache.applyBatch(51, false, []);
    expect(cache.beginLookup("m").answer(route("n4", 4), 218)).toMatchObject({ epoch: 4 });
    cache.applyBatch(65, false, [ch("m", "n1", 1)]);
    cache.applyBatch(100, false, [ch("m", "", 0)]);
    expect(cache.get("m")).toMatchObject({ nodeId: "n4", epoch: 4 });
    cache.applyBatch(105, false, [ch("m", "n3", 3)]);
    cache.applyBatch(188, false, [ch("m", "n4", 4)]);
    expect(cache.get("m")).toMatchObject({ nodeId: "n4", epoch: 4 });
    // Past the answer's revision the feed is the newer word again, removal included.
    cache.applyBatch(219, false, [ch("m", "", 0)]);
    expect(cache.get("m")).toBeUndefined();
    expect((cache as unknown as { ahead: Map<string, number> }).ahead.size).toBe(0);
  });

  it("a reset table older than an answer keeps the answer's route, even when the table lacks the meeting or holds an older epoch", () => {
    const cache = new RouteCache();
    cache.applyBatch(10, false, [ch("m", "n1", 1), ch("k", "n1", 1)]);
    cache.beginLookup("m").answer(route("n3", 3), 50);
    cache.applyBatch(40, true, [ch("k", "n1", 1)]);
    expect(cache.get("m")).toMatchObject({ epoch: 3 });
    cache.applyBatch(40, false, [ch("m", "n2", 2)]); // a later chunk of the same table
    expect(cache.get("m")).toMatchObject({ epoch: 3 });
    // A table newer than the answer is the whole truth.
    cache.applyBatch(60, true, [ch("k", "n1", 1)]);
    expect(cache.get("m")).toBeUndefined();
  });

  it("a reset table at the very revision of an answer keeps the meeting (seed 600104: the table's row was skipped and the answer's route not kept)", () => {
    const cache = new RouteCache();
    cache.applyBatch(122, false, [ch("m", "n1", 1)]);
    cache.beginLookup("m").answer(route("n3", 3), 199);
    cache.applyBatch(199, true, [ch("m", "n3", 3)]);
    expect(cache.get("m")).toMatchObject({ nodeId: "n3", epoch: 3 });
    cache.applyBatch(200, false, []);
    expect(cache.get("m")).toMatchObject({ nodeId: "n3", epoch: 3 });
  });

  it("an answer at a revision the feed has passed sets no skip: the feed's next changes apply", () => {
    const cache = new RouteCache();
    cache.applyBatch(30, false, [ch("m", "n1", 1)]);
    cache.beginLookup("m").answer(route("n1", 1), 20);
    cache.applyBatch(31, false, [ch("m", "", 0)]);
    expect(cache.get("m")).toBeUndefined();
  });

  it("the planted bug (applyOutOfOrder) stores the old answer, so the simulation's knob still bites", () => {
    const cache = new RouteCache({ applyOutOfOrder: true });
    const lookup = cache.beginLookup("m");
    cache.applyBatch(2, false, [ch("m", "n2", 2)]);
    cache.applyBatch(3, false, [ch("m", "", 0)]);
    expect(lookup.answer(route("n1", 1))).toMatchObject({ epoch: 1 });
  });
});

describe("route resolver against late answers", () => {
  /** A coordinator client whose GetRoute answers come from `answers`, the feed's batches applied while the first is in flight. */
  function resolverWith(cache: RouteCache, answers: { nodeId: string; epoch: number; revision?: unknown }[], whileInFlight: () => void) {
    let calls = 0;
    const client = {
      unary: async () => {
        const a = answers[Math.min(calls, answers.length - 1)]!;
        if (calls++ === 0) whileInFlight();
        return { meeting_id: "m", node_id: a.nodeId, address: `127.0.0.1:${a.epoch + 1000}`, epoch: a.epoch, created: false, revision: a.revision ?? 0 };
      },
    } as unknown as CoordinatorClient;
    const metrics = new GatewayMetrics({ cacheSize: () => cache.size, openWebSockets: () => 0, feedRevision: () => cache.revision });
    const resolver = new RouteResolver(cache, client, undefined, metrics, pino({ level: "silent" }), () => undefined);
    return { resolver, calls: () => calls };
  }

  it("asks again when the answer is older than what the feed brought meanwhile, and routes to the fresh answer", async () => {
    const cache = new RouteCache();
    const feed = () => {
      cache.applyBatch(2, false, [ch("m", "n2", 2)]);
      cache.applyBatch(3, false, [ch("m", "", 0)]);
    };
    const { resolver, calls } = resolverWith(cache, [{ nodeId: "n1", epoch: 1 }, { nodeId: "n3", epoch: 3 }], feed);
    await expect(resolver.locate("m", "10.0.0.1")).resolves.toMatchObject({ nodeId: "n3", epoch: 3 });
    expect(calls()).toBe(2);
    expect(cache.get("m")).toMatchObject({ epoch: 3 });
  });

  it("passes the answer's revision to the cache, and refuses a revision outside uint64 as an answer outside the contract", async () => {
    const cache = new RouteCache();
    const { resolver } = resolverWith(cache, [{ nodeId: "n4", epoch: 4, revision: 500 }], () => undefined);
    await resolver.locate("m", "10.0.0.1");
    cache.applyBatch(400, false, [ch("m", "", 0)]);
    expect(cache.get("m")).toMatchObject({ epoch: 4 });
    for (const revision of [-1, 1.5, "7", 2 ** 53]) {
      const other = new RouteCache();
      const bad = resolverWith(other, [{ nodeId: "n4", epoch: 4, revision }], () => undefined);
      await expect(bad.resolver.locate("m", "10.0.0.1"), String(revision)).rejects.toThrow(/revision .* is not a uint64/);
      expect(other.get("m")).toBeUndefined();
    }
  });

  it("gives up with 503 after a few stale answers, caching none", async () => {
    const cache = new RouteCache();
    const feed = () => {
      cache.applyBatch(2, false, [ch("m", "n2", 2)]);
      cache.applyBatch(3, false, [ch("m", "", 0)]);
    };
    // A coordinator that keeps answering from before the move (a broken contract): the retries keep the first lookup's floor.
    const { resolver, calls } = resolverWith(cache, [{ nodeId: "n1", epoch: 1 }], feed);
    await expect(resolver.locate("m", "10.0.0.1")).rejects.toThrow(UpstreamUnavailableError);
    expect(calls()).toBe(3);
    expect(cache.get("m")).toBeUndefined();
  });
});
