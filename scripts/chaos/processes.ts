/**
 * The chaos run's child processes: spawned with their output in a log file,
 * killed with SIGKILL, paused with SIGSTOP, resumed with SIGCONT. Every
 * child ever spawned is tracked, so `killAllSync` (from exit handlers) can
 * end whatever is left, by pid, including paused ones.
 *
 * A member in a network namespace is spawned as `ip netns exec NS node ...`;
 * `ip netns exec` execs, so the pid is node's own and SIGKILL/SIGSTOP reach
 * it directly (checked once per spawn through /proc/PID/comm).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export class Child {
  readonly pid: number;
  readonly exited: Promise<ExitInfo>;
  private exitInfo: ExitInfo | undefined;
  paused = false;
  /** Set by kill9/terminate: the exit was ours, not a crash. */
  expectedExit = false;

  constructor(
    readonly name: string,
    readonly proc: ChildProcess,
    readonly logFile: string,
  ) {
    if (proc.pid === undefined) throw new Error(`${name} did not start (spawn failed); see ${logFile}`);
    this.pid = proc.pid;
    this.exited = new Promise<ExitInfo>((resolve) => {
      proc.once("exit", (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
    });
  }

  get alive(): boolean {
    return this.exitInfo === undefined;
  }

  get exit(): ExitInfo | undefined {
    return this.exitInfo;
  }

  /** kill -9; resolves once the process is gone. */
  async kill9(): Promise<void> {
    this.expectedExit = true;
    if (!this.alive) return;
    signal(this.pid, "SIGKILL");
    await this.exited;
    this.paused = false;
  }

  pause(): void {
    if (!this.alive) return;
    signal(this.pid, "SIGSTOP");
    this.paused = true;
  }

  resume(): void {
    if (!this.alive) return;
    signal(this.pid, "SIGCONT");
    this.paused = false;
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async terminate(graceMs = 3000): Promise<void> {
    this.expectedExit = true;
    if (!this.alive) return;
    if (this.paused) this.resume();
    signal(this.pid, "SIGTERM");
    const timer = setTimeout(() => this.alive && signal(this.pid, "SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
  }
}

export class ProcessTable {
  private readonly all: Child[] = [];

  constructor(private readonly cwd: string) {}

  /** Spawns `command` with its stdout and stderr appended to `logFile`. */
  spawn(name: string, command: readonly string[], logFile: string, env?: NodeJS.ProcessEnv): Child {
    const fd = openSync(logFile, "a");
    let proc: ChildProcess;
    try {
      proc = spawn(command[0]!, command.slice(1), { cwd: this.cwd, stdio: ["ignore", fd, fd], env: env ?? process.env });
    } finally {
      closeSync(fd);
    }
    const child = new Child(name, proc, logFile);
    this.all.push(child);
    return child;
  }

  /** Every child still running. */
  live(): Child[] {
    return this.all.filter((c) => c.alive);
  }

  /** SIGKILL to every child still running (SIGKILL ends stopped processes too). Safe in an exit handler. */
  killAllSync(): void {
    for (const c of this.all) if (c.alive) signal(c.pid, "SIGKILL");
  }

  async killAll(): Promise<void> {
    await Promise.all(this.live().map((c) => c.kill9()));
  }

  /** Children that exited without being told to, with the end of their log. */
  unexpectedExits(): string[] {
    return this.all
      .filter((c) => !c.alive && !c.expectedExit)
      .map((c) => `${c.name} (pid ${c.pid}) exited with ${c.exit!.signal ?? `code ${c.exit!.code}`}: ${tail(c.logFile)}`);
  }
}

/** The executable name of a running pid ("node"), or undefined when it is gone. */
export function commOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return undefined;
  }
}

export interface RunResult {
  readonly code: number | null;
  readonly output: string;
}

/**
 * Runs a short command to its end (a CLI call), tracked like every child:
 * its output collected, SIGKILL after `timeoutMs`; `env` replaces this
 * process's environment (security.ts's credentialsEnv).
 */
export function runToEnd(table: ProcessTable, name: string, command: readonly string[], logFile: string, timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<RunResult> {
  const child = table.spawn(name, command, logFile, env);
  child.expectedExit = true;
  const timer = setTimeout(() => void child.kill9(), timeoutMs);
  return child.exited.then((exit) => {
    clearTimeout(timer);
    let output = "";
    try {
      output = readFileSync(logFile, "utf8");
    } catch {
      // nothing written
    }
    return { code: exit.code, output };
  });
}

function tail(path: string): string {
  try {
    return readFileSync(path, "utf8").trim().split("\n").slice(-3).join(" | ").slice(0, 600);
  } catch {
    return "(no log)";
  }
}
