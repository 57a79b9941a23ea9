/**
 * The repository is self-contained: the README, docs/ and `convene start
 * --help` point at documents that are in it, never outside it.
 */
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runCli } from "../src/cli/run.js";

const root = fileURLToPath(new URL("../", import.meta.url));
const documents = ["README.md", ...readdirSync(join(root, "docs")).map((f) => join("docs", f))];

describe("documents", () => {
  it.each(documents)("%s links only to files of the repository", (doc) => {
    const text = readFileSync(join(root, doc), "utf8");
    expect(text).not.toMatch(/\.\.\/shared|DESIGN\.md|(?<![\w/])API\.md/);
    // Markdown links and bare docs/... mentions, without anchors or URLs.
    const targets = [...text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)].map((m) => m[1]!).filter((t) => !/^[a-z]+:/.test(t));
    targets.push(...[...text.matchAll(/(?<![\w/.])(docs\/[\w.-]+\.md)/g)].map((m) => (doc === "README.md" ? m[1]! : join("..", m[1]!))));
    for (const target of targets) expect(existsSync(join(root, dirname(doc), target)), `${doc} → ${target}`).toBe(true);
  });

  it("convene start --help and convene --help point at docs/", async () => {
    for (const args of [["start", "--help"], ["--help"]]) {
      let out = "";
      const code = await runCli(args, { writeOut: (t) => (out += t), writeErr: (t) => (out += t) });
      expect(code).toBe(0);
      expect(out).toContain("docs/api.md");
      expect(out).not.toContain("API.md");
    }
  });
});
