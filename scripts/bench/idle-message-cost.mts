/**
 * What one small message costs an otherwise idle Node process, the way an
 * idle member receives its leader's heartbeats: RATE messages a second
 * (default 100) of 60 bytes for SECONDS (10), on one long-lived stream,
 * (a) as grpc-js client-stream messages (the Raft transport's kind of
 * call) and (b) as raw node:http2 DATA frames on one stream. Prints each
 * side's CPU per message from /proc/<pid>/stat (the receiver in a child
 * process of its own), so the floor under an idle member's CPU can be told
 * from what convene's own code adds.
 *   npx tsx scripts/bench/idle-message-cost.mts
 */
import { fork } from "node:child_process";
import { readFileSync } from "node:fs";
import * as http2 from "node:http2";
import * as grpc from "@grpc/grpc-js";

const RATE = Number(process.env.RATE ?? 100);
const SECONDS = Number(process.env.SECONDS ?? 10);
const cpuMs = (pid: number): number => {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
};
const payload = Buffer.alloc(60, 7);
const passthrough = { path: "/bench.Idle/Stream", requestStream: true, responseStream: false, requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b };

if (process.argv[2] === "receiver") {
  const kind = process.argv[3];
  let received = 0;
  if (kind === "grpc") {
    const server = new grpc.Server();
    server.addService({ Stream: passthrough } as unknown as grpc.ServiceDefinition, {
      Stream: (call: grpc.ServerReadableStream<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        call.on("data", () => received++);
        call.on("end", () => cb(null, Buffer.alloc(0)));
      },
    });
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (_e, port) => process.send!({ port }));
  } else {
    const server = http2.createServer();
    server.on("stream", (stream) => {
      stream.on("error", () => undefined);
      stream.on("data", () => received++);
      stream.on("end", () => stream.respond({ ":status": 200 }, { endStream: true }));
    });
    server.listen(0, "127.0.0.1", () => process.send!({ port: (server.address() as { port: number }).port }));
  }
  process.on("message", () => process.send!({ received }));
} else {
  for (const kind of ["grpc", "http2", "grpc", "http2"]) {
    const child = fork(new URL(import.meta.url).pathname, ["receiver", kind], { execArgv: ["--import", "tsx"] });
    const { port } = await new Promise<{ port: number }>((r) => child.once("message", (m) => r(m as { port: number })));
    let send: () => void;
    let close: () => void;
    if (kind === "grpc") {
      const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
      const call = client.makeClientStreamRequest(passthrough.path, passthrough.requestSerialize, passthrough.responseDeserialize, () => undefined);
      call.on("error", () => undefined);
      send = () => call.write(payload);
      close = () => { call.end(); client.close(); };
    } else {
      const session = http2.connect(`http://127.0.0.1:${port}`);
      const stream = session.request({ ":method": "POST", ":path": "/idle" });
      // The receiver is killed at the end: its reset is expected.
      session.on("error", () => undefined);
      stream.on("error", () => undefined);
      stream.on("response", () => undefined);
      send = () => stream.write(payload);
      close = () => { stream.end(); session.close(); };
    }
    // Warm up, then measure.
    const timer = setInterval(() => send(), 1000 / RATE);
    await new Promise((r) => setTimeout(r, 3000));
    const c0 = cpuMs(child.pid!);
    const s0 = process.cpuUsage();
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    const receiverMs = cpuMs(child.pid!) - c0;
    const s1 = process.cpuUsage(s0);
    clearInterval(timer);
    const n = RATE * SECONDS;
    child.send("count");
    const { received } = await new Promise<{ received: number }>((r) => child.once("message", (m) => r(m as { received: number })));
    console.log(`${kind.padEnd(5)}: receiver ${((receiverMs * 1000) / n).toFixed(0)} µs per message (${((receiverMs / (SECONDS * 1000)) * 100).toFixed(2)}% of a core), sender ${((s1.user + s1.system) / n).toFixed(0)} µs per message incl. its timer; ${received} received`);
    close();
    child.kill();
  }
  process.exit(0);
}
