/**
 * What one wake of an idle Node.js process costs on this machine: a
 * process that does nothing but a timer every N ms, its CPU over 10 s
 * (after 2 s of settling) divided by the wakes. On this VM a wake costs
 * far more than the callback (about 160 µs), so an idle member's CPU is
 * mostly how often it wakes, not what it does when awake.
 *   npx tsx scripts/bench/timer-wake.mts [intervals in ms, default 100 40 20 10]
 */
import { spawnSync } from "node:child_process";

const CHILD = `
const ms = Number(process.argv[1]);
let wakes = 0;
setInterval(() => { wakes++; }, ms);
let before;
setTimeout(() => { before = process.cpuUsage(); wakes = 0; }, 2000);
setTimeout(() => {
  const used = process.cpuUsage(before);
  const us = used.user + used.system;
  console.log(JSON.stringify({ ms, share: us / 10_000_000, perWakeUs: us / wakes }));
  process.exit(0);
}, 12000);
`;

const intervals = process.argv.slice(2).map(Number);
for (const ms of intervals.length > 0 ? intervals : [100, 40, 20, 10]) {
  const out = spawnSync(process.execPath, ["-e", CHILD, String(ms)], { encoding: "utf8" });
  const r = JSON.parse(out.stdout) as { ms: number; share: number; perWakeUs: number };
  console.log(`a timer every ${ms} ms: ${(r.share * 100).toFixed(2)}% of a core, ${Math.round(r.perWakeUs)} µs per wake`);
}
