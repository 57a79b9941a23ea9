/**
 * The previous release, built, for the rolling upgrade test: its sources at
 * PREVIOUS_RELEASE (git archive of that commit, so no worktree is left
 * registered if a run is killed), its dependencies (the lock file's: this
 * checkout's node_modules when the lock files are identical, `npm ci`
 * otherwise) and `tsc -p tsconfig.build.json`. Kept in the OS temp
 * directory by commit, so later runs reuse it.
 *
 * "Previous release" (README, "Rolling upgrades"): the newest commit of
 * main before this one that operators may be running, i.e. the commit the
 * upgrade starts from. Until releases are tagged it is named here; change
 * it (or set CONVENE_PREVIOUS_RELEASE) when a release is cut.
 */
import { execFileSync, execSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** main before cluster versions, backup and metrics: the release a rolling upgrade to this one starts from. */
export const PREVIOUS_RELEASE = process.env.CONVENE_PREVIOUS_RELEASE ?? "4c6fe22763b4eb19add3dd676e4a6498b76f5cd7";

const root = fileURLToPath(new URL("../../", import.meta.url));

export interface ReleaseBuild {
  readonly commit: string;
  /** The release's directory: run `node dist/cli.js ...` in it. */
  readonly dir: string;
  readonly cli: readonly string[];
}

/**
 * The commit's full name. A shallow clone may lack it: its history is
 * fetched from origin once, and if the commit is still missing the error
 * says what the test needs.
 */
function resolveCommit(commit: string): string {
  const revParse = (): string => execFileSync("git", ["rev-parse", "--verify", "--quiet", `${commit}^{commit}`], { cwd: root, encoding: "utf8" }).trim();
  try {
    return revParse();
  } catch {
    const shallow = execFileSync("git", ["rev-parse", "--is-shallow-repository"], { cwd: root, encoding: "utf8" }).trim() === "true";
    if (shallow) {
      try {
        execFileSync("git", ["fetch", "--quiet", "--unshallow", "origin"], { cwd: root, stdio: "inherit" });
        return revParse();
      } catch {
        // Reported below with what to do.
      }
    }
    throw new Error(`the previous release ${commit} is not in this clone's history${shallow ? " (a shallow clone whose origin could not deepen it)" : ""}: the rolling upgrade test builds it; clone with full history or set CONVENE_PREVIOUS_RELEASE`);
  }
}

/** Builds (or reuses) the release at `commit`. Takes a minute the first time. */
export function buildRelease(commit = PREVIOUS_RELEASE): ReleaseBuild {
  const full = resolveCommit(commit);
  const dir = join(tmpdir(), `convene-release-${full.slice(0, 12)}`);
  const done = join(dir, ".built");
  // A build that borrowed this checkout's node_modules is stale once this checkout's lock file changes.
  const lockSha = createHash("sha256").update(readFileSync(join(root, "package-lock.json"))).digest("hex");
  const stale = (): boolean => {
    const [, deps] = readFileSync(done, "utf8").split("\n");
    return deps !== "own" && deps !== lockSha;
  };
  if (existsSync(done) && stale()) rmSync(dir, { recursive: true, force: true });
  if (!existsSync(done)) {
    const partial = `${dir}.partial-${process.pid}`;
    rmSync(partial, { recursive: true, force: true });
    mkdirSync(partial, { recursive: true });
    execSync(`git archive ${full} | tar -x -C ${JSON.stringify(partial)}`, { cwd: root, stdio: "inherit" });
    const sameLock = readFileSync(join(partial, "package-lock.json"), "utf8") === readFileSync(join(root, "package-lock.json"), "utf8");
    if (sameLock) symlinkSync(join(root, "node_modules"), join(partial, "node_modules"), "dir");
    else execFileSync("npm", ["ci", "--no-audit", "--no-fund"], { cwd: partial, stdio: "inherit" });
    execFileSync(process.execPath, [join(partial, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json"], { cwd: partial, stdio: "inherit" });
    writeFileSync(join(partial, ".built"), `${full}\n${sameLock ? lockSha : "own"}\n`);
    // Another test process may have finished the same build meanwhile: either copy is as good.
    if (!existsSync(done)) {
      rmSync(dir, { recursive: true, force: true });
      renameSync(partial, dir);
    } else rmSync(partial, { recursive: true, force: true });
  }
  return { commit: full, dir, cli: [join(dir, "dist/cli.js")] };
}
