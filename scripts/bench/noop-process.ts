/** Starts noop-server.ts as a child process: the stack's ceiling for the raft, coordinator and compare-etcd benchmarks. */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));

export interface NoopServer {
  readonly child: ChildProcess;
  readonly address: string;
  close(): void;
}

export async function startNoopServer(): Promise<NoopServer> {
  const child = spawn(process.execPath, ["--import", "tsx", "scripts/bench/noop-server.ts"], { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once("exit", (code, signal) => reject(new Error(`noop server exited before listening (${code ?? signal})`)));
    child.stdout!.on("data", (b: Buffer) => {
      const m = /listening (\d+)/.exec(b.toString());
      if (m) resolve(Number(m[1]));
    });
  });
  return { child, address: `127.0.0.1:${port}`, close: () => void child.kill("SIGTERM") };
}
