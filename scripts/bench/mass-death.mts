/**
 * What applying many deaths at once costs a member, without Raft, disk or
 * network: one state machine with 10,000 nodes and 100,000 meetings (ten
 * each), then DEATHS (3,944, as a 10,000-server scale run once judged in
 * one check) setLiveness DEAD commands applied in a row, each moving the
 * dead node's meetings elsewhere. Prints the total and the slowest apply.
 *   npx tsx scripts/bench/mass-death.mts
 */
import { type Command, encodeCommand } from "../../src/coordinator/commands.js";
import { CoordinatorStateMachine } from "../../src/coordinator/coordinator-state-machine.js";

const deaths = Number(process.env.DEATHS ?? 3944);
const sm = new CoordinatorStateMachine();
let index = 0;
const apply = (c: object) => sm.apply(encodeCommand({ nowMs: 1_000 + index, ...c } as Command), ++index);
for (let n = 0; n < 10_000; n++) apply({ type: "register", nodeId: `s${n}`, address: `127.0.0.1:${20_000 + (n % 40_000)}`, capacity: 2000, region: "", labels: [] });
for (let m = 0; m < 100_000; m++) apply({ type: "createMeeting", meetingId: `room-${m}`, region: "", requiredLabels: [] });
const generations = new Map(sm.queries.listNodes().map((n) => [n.nodeId, n.generation]));
const started = performance.now();
let slowest = 0;
for (let n = 0; n < deaths; n++) {
  const t = performance.now();
  apply({ type: "setLiveness", nodeId: `s${n}`, generation: generations.get(`s${n}`), liveness: "DEAD" });
  slowest = Math.max(slowest, performance.now() - t);
}
const ms = performance.now() - started;
console.log(`${deaths.toLocaleString("en")} deaths applied in ${ms.toFixed(0)} ms (${(ms / deaths).toFixed(2)} ms each, slowest ${slowest.toFixed(1)} ms); meetings unassigned ${sm.queries.counts().unassigned}`);
