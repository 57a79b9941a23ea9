/**
 * The ceiling of the stack for the raft benchmark: a grpc-js server that
 * serves the same Kv service and does nothing. Prints "listening PORT".
 */
import * as grpc from "@grpc/grpc-js";
import { loadProto, lookup } from "../../src/member/proto.js";

const Kv = lookup<grpc.ServiceClientConstructor>(loadProto("member.proto"), "convene.member.v1.Kv");
const server = new grpc.Server();
server.addService(Kv.service, {
  Put: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, { ok: true, value: "", index: 0 }),
  Create: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, { ok: true, value: "", index: 0 }),
  Get: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, { found: false, value: "" }),
  Dump: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, { entries: [], applied_index: 0 }),
});
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  console.log(`listening ${port}`);
});
process.on("SIGTERM", () => server.forceShutdown());
