/**
 * The flags both simulations' commands take (scripts/sim.ts,
 * scripts/sim-system.ts): which seeds, how many members, and how much to
 * print. A bad value is named with its flag and the process exits 2.
 */
import { parseArgs } from "node:util";

export interface SeedRun {
  readonly first: number;
  readonly count: number;
  readonly quiet: boolean;
  readonly trace: boolean;
  /** The members a seed runs with: --members, else 3 and 5 on alternate seeds so both sizes get half. */
  members(seed: number): 3 | 5;
  /** A whole-number flag of the command's own, or its default. */
  wholeNumber(name: string, fallback: number): number;
}

function refuse(message: string): never {
  console.error(message);
  process.exit(2);
}

export function parseSeedFlags(extra: readonly string[] = [], defaultSeeds = 100): SeedRun {
  const options: Record<string, { type: "string" | "boolean"; default?: boolean }> = {
    seeds: { type: "string" },
    seed: { type: "string" },
    members: { type: "string" },
    quiet: { type: "boolean", default: false },
    trace: { type: "boolean", default: false },
  };
  for (const name of extra) options[name] = { type: "string" };
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ options }).values;
  } catch (err) {
    refuse(`${err instanceof Error ? err.message : String(err)}\nflags: --seeds N --seed S --members 3|5 --quiet --trace${extra.map((n) => ` --${n} N`).join("")}`);
  }
  const whole = (name: string): number | undefined => {
    const raw = values[name];
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (typeof raw !== "string" || !Number.isSafeInteger(n) || n < 0) refuse(`--${name} must be a whole number of 0 or more, got ${JSON.stringify(String(raw).slice(0, 40))}`);
    return n;
  };
  const membersArg = whole("members");
  if (membersArg !== undefined && membersArg !== 3 && membersArg !== 5) refuse(`--members must be 3 or 5, got ${membersArg}`);
  const seed = whole("seed");
  return {
    first: seed ?? 1,
    // One seed given alone replays that seed.
    count: whole("seeds") ?? (seed !== undefined ? 1 : defaultSeeds),
    quiet: values.quiet === true,
    trace: values.trace === true,
    members: (s) => (membersArg as 3 | 5 | undefined) ?? (s % 2 === 0 ? 5 : 3),
    wholeNumber: (name, fallback) => whole(name) ?? fallback,
  };
}
