/**
 * Where a process's CPU went, from a V8 `.cpuprofile` (node --cpu-prof):
 * self time summed by part of the stack (gRPC, protobuf, LevelDB, the Raft
 * core, ...) and the functions that took the most, as a share of the
 * profile's busy time (idle excluded).
 *
 *   node --import tsx scripts/bench/profile-summary.ts FILE.cpuprofile... [--top N] [--since MS] [--until MS]
 *
 * --since and --until keep the samples of that window, in ms from the
 * profile's start (leaving out start-up and exit).
 *
 * compare-etcd runs it on the members' profiles when COMPARE_ETCD_PROFILE
 * names a directory.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** The part of the stack a frame belongs to, by where its code lives. */
export function partOf(url: string, functionName: string): string {
  if (functionName === "(garbage collector)") return "garbage collection";
  if (functionName === "(program)") return "V8 and native (no JS frame)";
  if (url === "") return "native";
  const rules: [RegExp, string][] = [
    [/node_modules\/@grpc\//, "gRPC (grpc-js)"],
    [/node_modules\/(protobufjs|@protobufjs)\//, "protobuf"],
    [/node_modules\/(msgpackr|msgpackr-extract)\//, "msgpack"],
    [/node_modules\/(classic-level|abstract-level|level|level-transcoder|level-supports)\//, "LevelDB binding"],
    [/node_modules\//, "other dependencies"],
    [/\/(src|dist)\/raft\//, "Raft core"],
    [/\/(src|dist)\/raft-runtime\//, "Raft runtime (driver, transport, storage)"],
    [/\/(src|dist)\/coordinator\//, "coordinator"],
    [/\/(src|dist)\/member\//, "member (server, forwarding)"],
    [/\/(src|dist)\/security\//, "security"],
    [/\/(src|dist)\//, "other convene code"],
    [/^node:internal\/http2|^node:http2/, "Node http2"],
    [/^node:internal\/(streams|stream_base_commons)|^node:stream/, "Node streams"],
    [/^node:internal\/(timers|process\/task_queues)|^node:timers/, "Node timers and microtasks"],
    [/^node:/, "Node (other)"],
  ];
  for (const [re, part] of rules) if (re.test(url)) return part;
  return "other";
}

export interface Summary {
  /** Busy time in ms (samples that are not idle). */
  busyMs: number;
  parts: { part: string; ms: number; share: number }[];
  functions: { name: string; part: string; ms: number; share: number }[];
}

/** Only samples taken from `sinceMs` to `untilMs` after the profile began (to leave out start-up and exit). */
export function summarize(profile: Profile, top = 15, sinceMs = 0, untilMs = Infinity): Summary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  let elapsedUs = 0;
  profile.samples.forEach((id, i) => {
    elapsedUs += profile.timeDeltas[i] ?? 0;
    if (elapsedUs >= sinceMs * 1000 && elapsedUs < untilMs * 1000) selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const parts = new Map<string, number>();
  const functions = new Map<string, { part: string; us: number }>();
  let busy = 0;
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    if (functionName === "(idle)") continue;
    busy += us;
    const part = partOf(url, functionName);
    parts.set(part, (parts.get(part) ?? 0) + us);
    const name = `${functionName || "(anonymous)"} ${url.replace(/^.*\/(node_modules|src|dist)\//, "$1/")}:${lineNumber + 1}`;
    const f = functions.get(name) ?? { part, us: 0 };
    f.us += us;
    functions.set(name, f);
  }
  const share = (us: number) => (busy > 0 ? us / busy : 0);
  return {
    busyMs: busy / 1000,
    parts: [...parts].sort((a, b) => b[1] - a[1]).map(([part, us]) => ({ part, ms: us / 1000, share: share(us) })),
    functions: [...functions]
      .sort((a, b) => b[1].us - a[1].us)
      .slice(0, top)
      .map(([name, f]) => ({ name, part: f.part, ms: f.us / 1000, share: share(f.us) })),
  };
}

export function formatSummary(s: Summary): string {
  const pct = (x: number) => `${(x * 100).toFixed(1).padStart(5)}%`;
  return [
    `busy ${s.busyMs.toFixed(0)} ms`,
    ...s.parts.map((p) => `  ${pct(p.share)}  ${p.part}`),
    "  top functions (self time):",
    ...s.functions.map((f) => `  ${pct(f.share)}  ${f.name}  [${f.part}]`),
  ].join("\n");
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const { positionals, values } = parseArgs({ allowPositionals: true, options: { top: { type: "string" }, since: { type: "string" }, until: { type: "string" } } });
  if (positionals.length === 0) {
    process.stderr.write("usage: profile-summary FILE.cpuprofile... [--top N] [--since MS] [--until MS]\n");
    process.exit(2);
  }
  const top = values.top === undefined ? 15 : Number(values.top);
  if (!Number.isInteger(top) || top < 1) {
    process.stderr.write(`--top must be a whole number of at least 1, got ${JSON.stringify(values.top)}\n`);
    process.exit(2);
  }
  const ms = (flag: "since" | "until", fallback: number): number => {
    const raw = values[flag];
    const v = raw === undefined ? fallback : Number(raw);
    if (Number.isNaN(v) || v < 0) {
      process.stderr.write(`--${flag} must be a number of ms of at least 0, got ${JSON.stringify(raw)}\n`);
      process.exit(2);
    }
    return v;
  };
  const [since, until] = [ms("since", 0), ms("until", Infinity)];
  for (const file of positionals) {
    console.log(`${file}\n${formatSummary(summarize(JSON.parse(readFileSync(file, "utf8")) as Profile, top, since, until))}\n`);
  }
}
