/** The do-nothing server of grpc-stream.ts: echoes each unary request and each stream message; prints its port. */
import * as grpc from "@grpc/grpc-js";
import { ECHO_SERVICE } from "./grpc-stream.js";

const server = new grpc.Server();
server.addService(ECHO_SERVICE, {
  Unary: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, call.request),
  Bidi: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
    call.on("data", (m: Buffer) => call.write(m));
    call.on("end", () => call.end());
    call.on("error", () => undefined);
  },
});
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  process.stdout.write(`${port}\n`);
});
