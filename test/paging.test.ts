/**
 * ListMeetings and MemberAdmin.AuditLog in pages, on a real member process:
 * page_size is honoured up to the server's maximum, next_page_token walks
 * the whole listing once, a caller that sends no page_size (as every caller
 * before paging) still gets everything up to the maximum, and a token of
 * another listing or filter is refused. The operator CLI's helpers page
 * through.
 */
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClusterClient, auditLog, listMeetings } from "../src/cli/cluster-client.js";
import { loadProto, lookup } from "../src/wire/proto.js";
import { MemberCluster, unary } from "./support/member-cluster.js";

const pkg = loadProto("convene.proto");
const NodeAgentClient = lookup<grpc.ServiceClientConstructor>(pkg, "convene.v1.NodeAgent");
const CoordinatorClient = lookup<grpc.ServiceClientConstructor>(pkg, "convene.v1.Coordinator");

interface Page { meetings: { meeting_id: string; node_id: string }[]; next_page_token: string }
interface AuditPage { entries: { index: number }[]; next_page_token: string }

describe("paging of ListMeetings and AuditLog", () => {
  let cluster: MemberCluster;
  let coordinator: grpc.Client;
  let agent: grpc.Client;
  let cli: ClusterClient;
  let beat: NodeJS.Timeout | undefined;
  const meetingIds = Array.from({ length: 25 }, (_, i) => `page-${String(i).padStart(2, "0")}`);

  beforeAll(async () => {
    cluster = new MemberCluster(["n1"], undefined, { app: "coordinator" });
    cluster.start("n1");
    await cluster.waitForLeader();
    const address = cluster.addresses.get("n1")!;
    coordinator = new CoordinatorClient(address, grpc.credentials.createInsecure());
    agent = new NodeAgentClient(address, grpc.credentials.createInsecure());
    const generations = new Map<string, number>();
    for (const id of ["ma", "mb"]) {
      const r = await unary<{ generation: number }>(agent, "Register", { node_id: id, address: `127.0.0.1:${id === "ma" ? 29901 : 29902}`, capacity: 100, region: "", labels: {} });
      generations.set(id, r.generation);
    }
    // Alive throughout, so no meeting moves while the listings are compared.
    beat = setInterval(() => {
      for (const [id, generation] of generations) unary(agent, "Heartbeat", { node_id: id, generation, active_meetings: 0, load: 0 }).catch(() => undefined);
    }, 300);
    for (const id of meetingIds) await unary(coordinator, "GetRoute", { meeting_id: id, create: true, region: "" });
    cli = new ClusterClient({ coordinators: [address], timeoutMs: 3000 });
  }, 60_000);

  afterAll(async () => {
    clearInterval(beat);
    cli?.close();
    coordinator?.close();
    agent?.close();
    await cluster?.close();
  });

  it("answers at most page_size meetings, sorted, and a token to the rest", async () => {
    const first = await unary<Page>(coordinator, "ListMeetings", { node_id: "", page_size: 10 });
    expect(first.meetings.map((m) => m.meeting_id)).toEqual(meetingIds.slice(0, 10));
    expect(first.next_page_token).not.toBe("");
    const second = await unary<Page>(coordinator, "ListMeetings", { node_id: "", page_size: 10, page_token: first.next_page_token });
    expect(second.meetings.map((m) => m.meeting_id)).toEqual(meetingIds.slice(10, 20));
    const last = await unary<Page>(coordinator, "ListMeetings", { node_id: "", page_size: 10, page_token: second.next_page_token });
    expect(last.meetings.map((m) => m.meeting_id)).toEqual(meetingIds.slice(20));
    expect(last.next_page_token).toBe("");
  });

  it("gives a caller without page_size everything (up to the maximum), as before paging", async () => {
    const all = await unary<Page>(coordinator, "ListMeetings", { node_id: "" });
    expect(all.meetings.map((m) => m.meeting_id)).toEqual(meetingIds);
    expect(all.next_page_token).toBe("");
  });

  it("keeps the node filter while paging, and refuses a token of another filter or listing", async () => {
    const onMa = (await unary<Page>(coordinator, "ListMeetings", { node_id: "ma" })).meetings.map((m) => m.meeting_id);
    expect(onMa.length).toBeGreaterThan(1);
    const paged = await listMeetings<{ meeting_id: string }>(cli, "ma", 1);
    expect(paged.map((m) => m.meeting_id)).toEqual(onMa);
    const token = (await unary<Page>(coordinator, "ListMeetings", { node_id: "ma", page_size: 1 })).next_page_token;
    await expect(unary(coordinator, "ListMeetings", { node_id: "mb", page_token: token })).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: 'page_token continues a listing filtered by "ma", not "mb": keep the filter while paging',
    });
    await expect(unary(coordinator, "ListMeetings", { node_id: "", page_token: "garbage" })).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: "page_token is not a next_page_token this server gave for meetings; start again with an empty page_token",
    });
  });

  it("pages the audit log the same way, and the CLI's helper walks it whole", async () => {
    const admin = cluster.admin("n1");
    const all = await unary<AuditPage>(admin, "AuditLog", { limit: 0 });
    expect(all.entries.length).toBeGreaterThan(25);
    expect(all.next_page_token).toBe("");
    const first = await unary<AuditPage>(admin, "AuditLog", { limit: 0, page_size: 5 });
    expect(first.entries.map((e) => e.index)).toEqual(all.entries.slice(0, 5).map((e) => e.index));
    expect(first.next_page_token).not.toBe("");
    const walked = await auditLog<{ index: number }>(cli, 0, 7);
    expect(walked.map((e) => e.index).slice(0, all.entries.length)).toEqual(all.entries.map((e) => e.index));
    const newest = await auditLog<{ index: number }>(cli, 3, 2);
    expect(newest).toHaveLength(3);
    await expect(unary(admin, "AuditLog", { page_token: (await unary<Page>(coordinator, "ListMeetings", { node_id: "", page_size: 1 })).next_page_token })).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
    });
  });
});
