/**
 * How far V8 lets a member's heap grow past its live data before the next
 * major collection.
 *
 * Why: V8 sizes the old generation by its own collection speed, up to four
 * times the live data. The leader allocates for every heartbeat and call,
 * and what survives a few young collections before dying piles up in the
 * old generation until the next major one. With 1,000 nodes heartbeating
 * and 100,000 meetings (`npm run bench -- scale`) the leader's heap held
 * 230 MiB of which 88 MiB were live (a heap snapshot), against 90 MiB on
 * each follower: the leader alone was at the 512 MiB target. A limit of
 * 1.5 times the live data keeps that slack small at the cost of more
 * frequent major collections, which mark concurrently. (Go's default,
 * GOGC=100, allows twice the live data.)
 *
 * Only once the state is large (the member calls this when it takes or
 * starts from a snapshot of 16 MiB or more): a small heap costs little
 * memory at V8's default, and limiting it would only add collections.
 *
 * Set at run time, not on the command line, so a member started any way
 * (`convene member`, `convene start`, a service manager) behaves the same.
 */
import { setFlagsFromString } from "node:v8";

const HEAP_GROWTH_PERCENT = 50;

export function limitHeapGrowth(): void {
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWTH_PERCENT}`);
}
