/**
 * The benchmark harness: `npm run bench -- <name> [--json FILE]`.
 * Each benchmark starts what it measures, prints a table and, with --json,
 * writes its figures.
 */
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { benchCoordinator } from "./bench/coordinator.js";
import { benchFailover } from "./bench/failover.js";
import { benchGateway } from "./bench/gateway.js";
import { benchRaft, benchRaftSteady } from "./bench/raft.js";
import { benchPlacement } from "./bench/placement.js";
import { benchScale } from "./bench/scale.js";
import { benchRaftCore } from "./bench/raft-core.js";
import { silenceIpServernameWarning } from "../src/security/servername-warning.js";

silenceIpServernameWarning();

const { positionals, values } = parseArgs({ allowPositionals: true, options: { json: { type: "string" }, tls: { type: "boolean" } } });
/** `--tls` (or CONVENE_BENCH_TLS=1): the coordinator benchmark over TLS with tokens. */
const tls = values.tls === true || process.env.CONVENE_BENCH_TLS === "1";

const benchmarks: Record<string, () => Promise<Record<string, number | string>> | Record<string, number | string>> = {
  "raft-core": () => {
    const r = benchRaftCore();
    return {
      "entries committed": r.entries,
      "batch size": r.batch,
      seconds: Number(r.seconds.toFixed(2)),
      "entries/s": Math.round(r.entriesPerSecond),
      "target entries/s": 500_000,
    };
  },
  raft: () => benchRaft(),
  "raft-steady": () => benchRaftSteady(),
  coordinator: () => benchCoordinator(10, { tls }),
  failover: () => benchFailover(),
  gateway: () => benchGateway(),
  "browser-failover": async () => (await import("./bench/browser-failover.js")).benchBrowserFailover(),
  placement: () => benchPlacement(),
  "grpc-stream": async () => (await import("./bench/grpc-stream.js")).benchGrpcStream(),
  scale: () => benchScale(),
  "compare-etcd": async () => (await import("./bench/compare-etcd.js")).benchCompareEtcd(),
};

const names = positionals.length > 0 ? positionals : Object.keys(benchmarks);
const results: Record<string, Record<string, number | string>> = {};
for (const name of names) {
  const run = benchmarks[name];
  if (!run) {
    console.error(`unknown benchmark ${JSON.stringify(name)}; known: ${Object.keys(benchmarks).join(", ")}`);
    process.exit(2);
  }
  const figures = await run();
  results[name] = figures;
  console.log(`\n${name}`);
  for (const [k, v] of Object.entries(figures)) console.log(`  ${k.padEnd(24)} ${typeof v === "number" ? v.toLocaleString("en-US") : v}`);
}
if (values.json) writeFileSync(values.json, JSON.stringify({ machine: { cpus: (await import("node:os")).cpus().length, node: process.version }, results }, null, 2));
