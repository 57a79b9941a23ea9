/** Every config rule, by a table of bad values and the message each gives. */
import { describe, expect, it } from "vitest";
import { ConfigError, ReadOnlyOption, SeededRandom, defaultConfig, validateConfig } from "../src/raft/index.js";

const base = defaultConfig("n1", new SeededRandom(1));

describe("validateConfig", () => {
  it("accepts the defaults", () => {
    expect(validateConfig(base)).toBe(base);
  });

  const bad: [string, Record<string, unknown>, string][] = [
    ["id", { id: "" }, 'id must match ^[A-Za-z0-9._-]{1,64}$, got ""'],
    ["id", { id: "a/b" }, 'id must match ^[A-Za-z0-9._-]{1,64}$, got "a/b"'],
    ["heartbeatTick", { heartbeatTick: 0 }, "heartbeatTick must be an integer at least 1, got 0"],
    ["electionTick", { electionTick: 1.5 }, "electionTick must be an integer at least 1, got 1.5"],
    ["electionTick vs heartbeatTick", { electionTick: 3, heartbeatTick: 3 }, "electionTick (3) must be greater than heartbeatTick (3)"],
    ["applied", { applied: -1 }, "applied must be an integer at least 0, got -1"],
    ["maxSizePerMsg", { maxSizePerMsg: 0 }, "maxSizePerMsg must be an integer at least 1, got 0"],
    ["maxInflightMsgs", { maxInflightMsgs: 0 }, "maxInflightMsgs must be an integer at least 1, got 0"],
    ["maxInflightBytes", { maxInflightBytes: 10, maxSizePerMsg: 100 }, "maxInflightBytes (10) must be 0 or at least maxSizePerMsg (100)"],
    ["maxUncommittedEntriesSize", { maxUncommittedEntriesSize: -5 }, "maxUncommittedEntriesSize must be an integer at least 0, got -5"],
    ["lease without check-quorum", { readOnlyOption: ReadOnlyOption.LeaseBased, checkQuorum: false }, 'readOnlyOption "lease" requires checkQuorum, got checkQuorum false'],
    ["lease margin", { readOnlyOption: ReadOnlyOption.LeaseBased, leaseMarginTicks: 10 }, "leaseMarginTicks (10) must be less than electionTick (10)"],
    ["readOnlyOption", { readOnlyOption: "fast" }, 'readOnlyOption must be "safe" or "lease", got "fast"'],
  ];
  for (const [field, change, messageText] of bad) {
    it(`rejects a bad ${field}`, () => {
      const run = () => validateConfig({ ...base, ...change } as typeof base);
      expect(run).toThrow(ConfigError);
      expect(run).toThrow(messageText);
    });
  }
});
