/** Every config rule, by a table of bad values and the message each gives. */
import { describe, expect, it } from "vitest";
import { idleHeartbeatTicks, snapshotOffset } from "../src/member/member.js";
import { validateMemberConfig } from "../src/member/member-config.js";
import { ConfigError, ReadOnlyOption, SeededRandom, defaultConfig, validateConfig } from "../src/raft/index.js";
import { describeValue, idProblem } from "../src/wire/describe.js";

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
    ["idleHeartbeatTick below heartbeatTick", { heartbeatTick: 2, idleHeartbeatTick: 1 }, "idleHeartbeatTick must be an integer at least 2, got 1"],
    ["idleHeartbeatTick vs electionTick", { electionTick: 10, idleHeartbeatTick: 10 }, "idleHeartbeatTick (10) must be less than electionTick (10)"],
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

describe("validateMemberConfig", () => {
  const ok = { id: "n1", listen: "127.0.0.1:7001", peers: "n1=127.0.0.1:7001,n2=127.0.0.1:7002", dataDir: "./data/n1" };
  const flags: Record<string, string> = { id: "--id", listen: "--listen", peers: "--peers", dataDir: "--data", join: "--join", tickMs: "--tick-ms", snapshotCatchUpEntries: "--snapshot-catch-up-entries" };
  const asFlags = (field: string): string => flags[field] ?? field;

  it("accepts a founding member and a joining one", () => {
    expect(validateMemberConfig(ok)).toMatchObject({ id: "n1", join: false, tickMs: 20, snapshotCatchUpEntries: 0 });
    expect(validateMemberConfig({ ...ok, snapshotCatchUpEntries: "5000" })).toMatchObject({ snapshotCatchUpEntries: 5_000 });
    expect(validateMemberConfig({ id: "n4", listen: "127.0.0.1:7004", dataDir: "d", join: true })).toMatchObject({ join: true });
  });

  // [what, raw, message with config keys, message as the CLI names the flags]
  const bad: [string, Record<string, unknown>, string, string][] = [
    ["nothing", {}, "id, listen, dataDir and peers (or join) are required", "--id, --listen, --data and --peers (or --join) are required"],
    ["no data", { ...ok, dataDir: undefined }, "dataDir is required", "--data is required"],
    ["a bad id", { ...ok, id: "a/b" }, 'id must be a member id: 1 to 64 letters, digits, ".", "_" or "-"; got "a/b" ("/" is not allowed)', '--id must be a member id: 1 to 64 letters, digits, ".", "_" or "-"; got "a/b" ("/" is not allowed)'],
    [
      "a 10,000-character id",
      { ...ok, id: "y".repeat(10_000) },
      `id must be a member id: 1 to 64 letters, digits, ".", "_" or "-"; got "${"y".repeat(40)}…" (10,000 characters), longer than 64`,
      `--id must be a member id: 1 to 64 letters, digits, ".", "_" or "-"; got "${"y".repeat(40)}…" (10,000 characters), longer than 64`,
    ],
    ["a bad listen", { ...ok, listen: "7001" }, 'listen must be host:port (a host name or IP address, a colon, a port from 1 to 65535), such as 127.0.0.1:7001; got "7001"', '--listen must be host:port'],
    [
      "peers without this member",
      { ...ok, peers: "n2=127.0.0.1:7002" },
      "peers must include this member (n1=127.0.0.1:7001) to found a group: every founding member as id=host:port, comma-separated; or pass join to join an existing group",
      "--peers must include this member (n1=127.0.0.1:7001) to found a group: every founding member as id=host:port, comma-separated; or pass --join to join an existing group",
    ],
    ["peers not id=host:port", { ...ok, peers: "n1" }, 'peers must list the founding members as id=host:port, comma-separated; got "n1"', "--peers must list the founding members"],
    ["a bad tick", { ...ok, tickMs: "0" }, 'tickMs must be a whole number from 1 to 10,000; got "0"', '--tick-ms must be a whole number from 1 to 10,000; got "0"'],
    ["election not above heartbeat", { ...ok, electionTicks: 2, heartbeatTicks: 2 }, "electionTicks (2) must be greater than heartbeatTicks (2)", "electionTicks (2) must be greater than heartbeatTicks (2)"],
    [
      "negative catch-up entries",
      { ...ok, snapshotCatchUpEntries: -1 },
      "snapshotCatchUpEntries must be a whole number from 0 to 100,000,000; got -1",
      "--snapshot-catch-up-entries must be a whole number from 0 to 100,000,000; got -1",
    ],
    ["a bad app", { ...ok, app: "etcd" }, 'app must be "coordinator" or "kv"; got "etcd"', 'app must be "coordinator" or "kv"; got "etcd"'],
  ];
  it.each(bad)("refuses %s, naming the field as the caller spells it", (_what, raw, byKey, byFlag) => {
    expect(() => validateMemberConfig(raw)).toThrow(ConfigError);
    expect(() => validateMemberConfig(raw)).toThrow(byKey);
    expect(() => validateMemberConfig(raw, asFlags)).toThrow(byFlag);
  });
});

describe("the member's idle heartbeat interval", () => {
  it("is a valid idleHeartbeatTick for every election and heartbeat setting a member accepts", () => {
    for (let electionTicks = 2; electionTicks <= 200; electionTicks++) {
      for (let heartbeatTicks = 1; heartbeatTicks < electionTicks; heartbeatTicks++) {
        const idle = idleHeartbeatTicks({ electionTicks, heartbeatTicks });
        expect(() => validateConfig({ ...defaultConfig("n1", new SeededRandom(1)), electionTick: electionTicks, heartbeatTick: heartbeatTicks, idleHeartbeatTick: idle })).not.toThrow();
      }
    }
    // The defaults: every 5 ticks of 20 ms.
    expect(idleHeartbeatTicks({ electionTicks: 20, heartbeatTicks: 2 })).toBe(5);
  });
});

describe("describeValue and idProblem", () => {
  it.each([
    ["abc", '"abc"'],
    ["z".repeat(41), `"${"z".repeat(40)}…" (41 characters)`],
    [undefined, "nothing"],
    [12, "12"],
    [[], "an empty list"],
    [["a", "b"], "a list of 2"],
    [{ a: 1 }, "a mapping"],
    [new Uint8Array(3), "3 bytes"],
  ])("shows %j as %s", (value, shown) => {
    expect(describeValue(value)).toBe(shown);
  });

  it.each([
    ["node", "m1", undefined],
    ["node", "", 'must be a node id: 1 to 64 letters, digits, ".", "_" or "-"; got an empty string'],
    ["node", "a:b", 'must be a node id: 1 to 64 letters, digits, ".", "_" or "-"; got "a:b" (":" is not allowed)'],
    ["meeting", "a:b", undefined],
    ["meeting", "a\tb", 'must be a meeting id: 1 to 128 letters, digits, ".", "_", ":" or "-"; got "a\\tb" (a tab is not allowed)'],
    ["meeting", 7, 'must be a meeting id: 1 to 128 letters, digits, ".", "_", ":" or "-"; got 7'],
  ] as const)("%s id %j", (kind, value, problem) => {
    expect(idProblem(kind, value)).toBe(problem);
  });
});

describe("validateMemberConfig: the operations settings", () => {
  const member = { id: "n1", listen: "127.0.0.1:7001", peers: "n1=127.0.0.1:7001", dataDir: "/tmp/x" };

  it("serves metrics on loopback beside the gRPC port by default, or where asked, or not at all", () => {
    expect(validateMemberConfig(member)).toMatchObject({ metricsListen: "127.0.0.1:8001", metricsListenDefaulted: true, forceNewCluster: false });
    expect(validateMemberConfig({ ...member, listen: "127.0.0.1:0", peers: "n1=127.0.0.1:0" })).toMatchObject({ metricsListen: "127.0.0.1:0" });
    expect(validateMemberConfig({ ...member, listen: "127.0.0.1:65000", peers: "n1=127.0.0.1:65000" })).toMatchObject({ metricsListen: undefined });
    expect(validateMemberConfig({ ...member, metricsListen: "127.0.0.1:0" })).toMatchObject({ metricsListen: "127.0.0.1:0", metricsListenDefaulted: false });
    expect(validateMemberConfig({ ...member, metricsListen: "off" })).toMatchObject({ metricsListen: undefined, metricsListenDefaulted: false });
    expect(validateMemberConfig({ ...member, metricsListen: "0.0.0.0:9100", insecure: true })).toMatchObject({ metricsListen: "0.0.0.0:9100" });
    expect(validateMemberConfig({ ...member, forceNewCluster: true })).toMatchObject({ forceNewCluster: true });
  });

  const bad: [string, Record<string, unknown>, string][] = [
    ["metricsListen", { metricsListen: "nowhere" }, 'metricsListen must be host:port (port 0 for any free one) or "off"; got "nowhere"'],
    ["metricsListen", { metricsListen: "127.0.0.1:70000" }, "metricsListen must be host:port"],
    ["metricsListen beyond loopback", { metricsListen: "0.0.0.0:9100" }, "metricsListen 0.0.0.0:9100 is beyond loopback: metrics are plain HTTP without authentication; pass insecure"],
    ["forceNewCluster with join", { forceNewCluster: true, join: true }, "forceNewCluster and join exclude each other"],
  ];
  for (const [field, change, messageText] of bad) {
    it(`rejects a bad ${field}`, () => {
      const run = () => validateMemberConfig({ ...member, ...change });
      expect(run).toThrow(ConfigError);
      expect(run).toThrow(messageText);
    });
  }
});

describe("the member's snapshot offset", () => {
  it("spreads the founding members evenly over snapshotEvery by their ids, a joining member included", () => {
    const peers = new Map([["n2", "b"], ["n1", "a"], ["n3", "c"]]);
    expect(["n1", "n2", "n3"].map((id) => snapshotOffset({ id, peers, snapshotEvery: 10_000 }))).toEqual([0, 3_333, 6_666]);
    // A member that joins later knows itself even when its peers list does not name it.
    expect(snapshotOffset({ id: "n4", peers, snapshotEvery: 10_000 })).toBe(7_500);
    expect(snapshotOffset({ id: "n1", peers: new Map([["n1", "a"]]), snapshotEvery: 10_000 })).toBe(0);
  });
});
