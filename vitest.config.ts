import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Every placement is checked against a scan of every node, in this process and in the members it starts (state-config.ts).
    env: { CONVENE_CHECK_PLACEMENT_INDEX: "1" },
  },
});
