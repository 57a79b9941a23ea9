/**
 * The ceiling of the stack: a grpc-js server that serves the same services
 * as a member and does nothing. The raft benchmark calls its Kv service;
 * compare-etcd calls its Coordinator.GetRoute, which answers every meeting
 * with one fixed route, as a create would. Prints "listening PORT".
 */
import * as grpc from "@grpc/grpc-js";
import { loadProto, lookup } from "../../src/wire/proto.js";

type Unary = (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => void;
const answer = (res: unknown): Unary => (_call, cb) => cb(null, res);

const Kv = lookup<grpc.ServiceClientConstructor>(loadProto("member.proto"), "convene.member.v1.Kv");
const Coordinator = lookup<grpc.ServiceClientConstructor>(loadProto("convene.proto"), "convene.v1.Coordinator");
const server = new grpc.Server();
server.addService(Kv.service, {
  Put: answer({ ok: true, value: "", index: 0 }),
  Create: answer({ ok: true, value: "", index: 0 }),
  Get: answer({ found: false, value: "" }),
  Dump: answer({ entries: [], applied_index: 0 }),
});
// Only GetRoute: the other Coordinator methods answer UNIMPLEMENTED.
server.addService(Coordinator.service, {
  GetRoute: ((call: grpc.ServerUnaryCall<{ meeting_id: string }, unknown>, cb: grpc.sendUnaryData<unknown>) =>
    cb(null, { meeting_id: call.request.meeting_id, node_id: "m1", address: "127.0.0.1:9301", epoch: 1, created: true })) as Unary,
});
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  console.log(`listening ${port}`);
});
process.on("SIGTERM", () => server.forceShutdown());
