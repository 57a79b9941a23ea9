// The layer rules of docs/architecture.md, checked by `npm test` (npm run lint).
// Only import and purity rules: formatting and style are left to review.
import tseslint from "typescript-eslint";

/** Anything that does I/O or reads time or randomness of the machine. */
const IO_MODULES = ["node:*", "@grpc/*", "level", "classic-level", "msgpackr", "pino", "fastify", "ws", "http-proxy-3", "undici", "prom-client"];
const TIMERS = ["setTimeout", "setInterval", "setImmediate", "clearTimeout", "clearInterval", "clearImmediate", "queueMicrotask", "performance"].map((name) => ({
  name,
  message: "the pure core takes time only from tick() and its caller; no timers here",
}));
const CLOCK_AND_DICE = [
  { object: "Date", property: "now", message: "time reaches the pure core only through tick() or a command's nowMs" },
  { object: "Math", property: "random", message: "randomness comes from an injected, seeded RandomSource" },
];

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "data/**"] },
  {
    files: ["src/**/*.ts", "test/**/*.ts", "scripts/**/*.ts", "scripts/**/*.mts"],
    languageOptions: { parser: tseslint.parser },
    linterOptions: { reportUnusedDisableDirectives: "error" },
  },
  {
    // The Raft core: pure and deterministic; it knows nothing of meetings or of its runtime.
    files: ["src/raft/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", { patterns: [{ group: [...IO_MODULES, "../*"], message: "src/raft is the pure core: no I/O, and nothing outside src/raft" }] }],
      "no-restricted-globals": ["error", ...TIMERS],
      "no-restricted-properties": ["error", ...CLOCK_AND_DICE],
    },
  },
  {
    // The coordinator's replicated state machine: apply is deterministic.
    files: ["src/coordinator/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: [...IO_MODULES.filter((m) => m !== "msgpackr"), "../*", "!../raft", "!../raft/*", "!../raft-runtime", "../raft-runtime/*", "!../raft-runtime/state-machine.js", "!../wire", "../wire/*", "!../wire/event-types.js"],
              message: "the coordinator's state machine is deterministic: no I/O; it knows src/raft's types and errors, the StateMachine contract and the wire's event names",
            },
          ],
        },
      ],
      "no-restricted-globals": ["error", ...TIMERS],
      "no-restricted-properties": ["error", ...CLOCK_AND_DICE],
    },
  },
  {
    // The runtime around the core: the driver, storage and transports. No coordinator, no member process.
    files: ["src/raft-runtime/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        { patterns: [{ group: ["../*", "!../raft", "!../raft/*", "!../time", "!../time/*"], message: "src/raft-runtime knows the core (src/raft) and the scheduler (src/time), nothing above them" }] },
      ],
    },
  },
  {
    // Libraries other people embed: they reach the cluster through src/wire and src/security only,
    // and take time and timers from src/time (an injected Scheduler, so the simulation runs them on virtual time).
    files: ["src/node-agent/**/*.ts", "src/gateway/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: ["../member/*", "../coordinator/*", "../coordinator/**", "../raft-runtime/*", "../raft/*", "../start/*", "../cli/*", "../demo-server/*"],
              message: "the node agent and the gateway use src/wire (proto, metadata names, member cursor), src/security and src/time, never server code",
            },
          ],
        },
      ],
    },
  },
);
