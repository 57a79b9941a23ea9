/**
 * The layer rules of eslint.config.js bite: code that breaks them, linted as
 * if it lived in each folder, is refused (and `npm test` lints the tree).
 */
import { ESLint } from "eslint";
import { describe, expect, it } from "vitest";

const eslint = new ESLint();

async function problems(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).map((m) => `${m.ruleId}: ${m.message}`);
}

describe("layer rules", () => {
  it.each([
    ["src/raft/x.ts", 'import { readFileSync } from "node:fs";', "no-restricted-imports"],
    ["src/raft/x.ts", 'import type { RaftDriver } from "../raft-runtime/driver.js";', "no-restricted-imports"],
    ["src/raft/x.ts", "export const t = setTimeout(() => 1, 5);", "no-restricted-globals"],
    ["src/raft/x.ts", "export const now = Date.now();", "no-restricted-properties"],
    ["src/raft/x.ts", "export const r = Math.random();", "no-restricted-properties"],
    ["src/coordinator/x.ts", 'import * as grpc from "@grpc/grpc-js";', "no-restricted-imports"],
    ["src/coordinator/x.ts", 'import { RaftDriver } from "../raft-runtime/driver.js";', "no-restricted-imports"],
    ["src/coordinator/x.ts", "export const now = Date.now();", "no-restricted-properties"],
    ["src/coordinator/x.ts", 'import { loadProto } from "../wire/proto.js";', "no-restricted-imports"],
    ["src/raft-runtime/x.ts", 'import { CoordinatorApp } from "../coordinator/service/coordinator-app.js";', "no-restricted-imports"],
    ["src/node-agent/x.ts", 'import { LeaderForwarder } from "../member/leader-forwarder.js";', "no-restricted-imports"],
    ["src/gateway/x.ts", 'import { CoordinatorState } from "../coordinator/state.js";', "no-restricted-imports"],
  ])("refuses in %s: %s", async (file, code, rule) => {
    const found = await problems(file, code);
    expect(found.some((p) => p.startsWith(`${rule}:`)), found.join("\n")).toBe(true);
  });

  it.each([
    ["src/raft/x.ts", 'import { StateRole } from "./types.js";'],
    ["src/coordinator/x.ts", 'import { NotLeaderError } from "../raft/errors.js";'],
    ["src/coordinator/x.ts", 'import type { StateMachine } from "../raft-runtime/state-machine.js";'],
    ["src/coordinator/x.ts", 'import { pack } from "msgpackr";'],
    ["src/coordinator/x.ts", 'import { EVENT_TYPES } from "../wire/event-types.js";'],
    ["src/raft-runtime/x.ts", 'import { RawNode } from "../raft/raw-node.js";'],
    ["src/node-agent/x.ts", 'import { loadProto } from "../wire/proto.js";'],
    ["src/gateway/x.ts", 'import { type Scheduler } from "../time/scheduler.js";'],
    ["src/node-agent/x.ts", 'import { type Scheduler } from "../time/scheduler.js";'],
  ])("allows in %s: %s", async (file, code) => {
    expect(await problems(file, code)).toEqual([]);
  });
});
