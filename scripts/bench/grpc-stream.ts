/**
 * grpc-stream: what a heartbeat costs in grpc-js as a unary call and as a
 * message on an open bidirectional stream (HeartbeatStream), with handlers
 * that do nothing: a do-nothing server in a child process, the client here,
 * 64 in flight, raw bytes (no protobuf), 4 s windows alternated twice.
 * CPU per message of each side from /proc/<pid>/stat; the stream is
 * measured with 64 streams of one message in flight each (as many agents)
 * and with one stream of 64 (as a fleet process sharing a connection).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";

const identity = (b: Buffer): Buffer => b;
export const ECHO_SERVICE = {
  Unary: { path: "/bench.Echo/Unary", requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity },
  Bidi: { path: "/bench.Echo/Bidi", requestStream: true, responseStream: true, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity },
} as unknown as grpc.ServiceDefinition;

function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
}

type Mode = "unary" | "64 streams" | "1 stream";

async function window(port: number, server: ChildProcess, mode: Mode, seconds: number): Promise<{ perSecond: number; clientUs: number; serverUs: number }> {
  const Client = grpc.makeGenericClientConstructor(ECHO_SERVICE, "Echo");
  const clients = Array.from({ length: 4 }, (_, i) => new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { "grpc.channel_id": i, "grpc.enable_retries": 0 }));
  const payload = Buffer.alloc(40, 1);
  const end = Date.now() + seconds * 1000;
  let done = 0;
  const c0 = cpuMs(process.pid);
  const s0 = cpuMs(server.pid!);
  const t0 = Date.now();
  if (mode === "unary") {
    await Promise.all(
      Array.from({ length: 64 }, async (_, w) => {
        const client = clients[w % 4] as unknown as { Unary(req: Buffer, cb: (e: unknown) => void): void };
        while (Date.now() < end) {
          await new Promise<void>((resolve, reject) => client.Unary(payload, (e) => (e ? reject(e) : resolve())));
          done++;
        }
      }),
    );
  } else {
    const streams = mode === "64 streams" ? 64 : 1;
    await Promise.all(
      Array.from({ length: streams }, (_, w) => {
        const call = (clients[w % 4] as unknown as { Bidi(): grpc.ClientDuplexStream<Buffer, Buffer> }).Bidi();
        let inFlight = 64 / streams;
        return new Promise<void>((resolve) => {
          call.on("error", () => undefined);
          call.on("data", () => {
            done++;
            if (Date.now() < end) call.write(payload);
            else if (--inFlight === 0) {
              call.end();
              resolve();
            }
          });
          for (let i = 0; i < inFlight; i++) call.write(payload);
        });
      }),
    );
  }
  const seconds_ = (Date.now() - t0) / 1000;
  const result = { perSecond: done / seconds_, clientUs: ((cpuMs(process.pid) - c0) * 1000) / done, serverUs: ((cpuMs(server.pid!) - s0) * 1000) / done };
  for (const c of clients) c.close();
  return result;
}

export async function benchGrpcStream(): Promise<Record<string, number | string>> {
  const script = fileURLToPath(new URL("./echo-server.ts", import.meta.url));
  const server = spawn(process.execPath, ["--import", "tsx", script], { stdio: ["ignore", "pipe", "inherit"] });
  try {
    const port = Number(await new Promise<string>((resolve) => server.stdout!.once("data", (d: Buffer) => resolve(d.toString().trim()))));
    const rows: Record<Mode, string[]> = { unary: [], "64 streams": [], "1 stream": [] };
    for (let round = 0; round < 2; round++) {
      for (const mode of ["unary", "64 streams", "1 stream"] as const) {
        const r = await window(port, server, mode, 4);
        rows[mode].push(`${Math.round(r.perSecond).toLocaleString("en-US")}/s, server ${r.serverUs.toFixed(0)} µs, client ${r.clientUs.toFixed(0)} µs`);
      }
    }
    return {
      "unary calls (two rounds)": rows.unary.join(" · "),
      "messages, 64 streams of 1 in flight": rows["64 streams"].join(" · "),
      "messages, 1 stream of 64 in flight": rows["1 stream"].join(" · "),
    };
  } finally {
    server.kill("SIGKILL");
  }
}
