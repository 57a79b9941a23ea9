/**
 * package.json's `engines.node` is the one truth about which Node.js
 * convene runs on: every installed package must accept every version it
 * declares (else `npm ci` warns EBADENGINE and the package may use what
 * the declared Node lacks), and the Node running the tests must be one of
 * them.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import semver from "semver";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../", import.meta.url));

interface InstalledPackage {
  readonly path: string;
  readonly name: string;
  readonly version: string;
  readonly engine: string | undefined;
}

function readJson(path: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
}

/** Every package of the lock file that is installed here (optional ones for other platforms are not). */
function installedPackages(): InstalledPackage[] {
  const lock = readJson(join(root, "package-lock.json")) as { packages: Record<string, unknown> };
  const found: InstalledPackage[] = [];
  for (const path of Object.keys(lock.packages)) {
    if (path === "" || !existsSync(join(root, path, "package.json"))) continue;
    const pkg = readJson(join(root, path, "package.json")) as { name?: string; version?: string; engines?: { node?: unknown } };
    const engine = typeof pkg.engines?.node === "string" ? pkg.engines.node : undefined;
    found.push({ path, name: pkg.name ?? path, version: pkg.version ?? "?", engine });
  }
  return found;
}

/** The packages whose engines.node refuses some Node version that `declared` allows. */
export function engineOffenders(declared: string, packages: readonly InstalledPackage[]): string[] {
  return packages
    .filter((p) => p.engine !== undefined && semver.validRange(p.engine) !== null && !semver.subset(declared, p.engine))
    .map((p) => `${p.name}@${p.version} wants node ${p.engine}`);
}

describe("engines", () => {
  const declared = (readJson(join(root, "package.json")) as { engines: { node: string } }).engines.node;

  it("declares a valid range that the Node running the tests satisfies", () => {
    expect(semver.validRange(declared)).not.toBeNull();
    expect(semver.satisfies(process.versions.node, declared), `node ${process.versions.node} is outside engines.node ${declared}`).toBe(true);
  });

  it("every installed package accepts every Node version package.json declares", () => {
    const packages = installedPackages();
    expect(packages.length).toBeGreaterThan(100);
    expect(engineOffenders(declared, packages)).toEqual([]);
  });

  it("the check refuses a package that wants a newer Node than declared", () => {
    const planted = [
      { path: "node_modules/http-proxy-3", name: "http-proxy-3", version: "2.0.1", engine: ">=22" },
      { path: "node_modules/eslint", name: "eslint", version: "10.16.0", engine: "^20.19.0 || ^22.13.0 || >=24" },
      { path: "node_modules/ok", name: "ok", version: "1.0.0", engine: ">=18" },
    ];
    expect(engineOffenders(">=20", planted)).toEqual(["http-proxy-3@2.0.1 wants node >=22", "eslint@10.16.0 wants node ^20.19.0 || ^22.13.0 || >=24"]);
    expect(engineOffenders("^20.19.0 || ^22.13.0 || >=24", planted)).toEqual(["http-proxy-3@2.0.1 wants node >=22"]);
  });
});
