/**
 * Attacks through node addresses and on the gateway's operator pages, on a
 * real coordinator member and gateways in this process:
 *
 * - Register refuses node addresses the policy refuses (link-local,
 *   unspecified, a member's own port, IPv4 shorthands, outside the
 *   member's --node-address-allow), before anything is replicated.
 * - A node that registers a gateway's address (which members cannot know)
 *   is refused by that gateway (its own address: 502), and a request that
 *   another gateway proxies there is refused as a loop (508), HTTP and
 *   WebSocket alike; a gateway's allow list refuses what is outside it.
 * - The dashboard, /dashboard.json and /metrics answer by their access
 *   setting (off, loopback, token, open); /route and /healthz stay public.
 */
import http from "node:http";
import { networkInterfaces } from "node:os";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { type Gateway, startGateway, validateGatewayConfig } from "../src/gateway/index.js";
import { newToken } from "../src/security/certs.js";
import { loadProto, lookup } from "../src/wire/proto.js";
import { MemberCluster, unary } from "./support/member-cluster.js";

const NodeAgentClient = lookup<grpc.ServiceClientConstructor>(loadProto("convene.proto"), "convene.v1.NodeAgent");

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: { error?: string; message?: string } & Record<string, unknown>;
  text: string;
}

function get(address: string, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  const colon = address.lastIndexOf(":");
  return new Promise((resolve, reject) => {
    const req = http.request({ host: address.slice(0, colon), port: Number(address.slice(colon + 1)), path, headers, agent: false }, (res) => {
      let text = "";
      res.on("data", (c: Buffer) => (text += c.toString()));
      res.on("end", () => {
        let body = {};
        try {
          body = JSON.parse(text) as object;
        } catch {
          // not JSON (the dashboard's HTML, /metrics' text)
        }
        resolve({ status: res.statusCode!, headers: res.headers, body, text });
      });
    });
    req.on("error", reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`GET ${path} timed out`)));
    req.end();
  });
}

/** The status a WebSocket upgrade to `url` is answered with (101 when it opens). */
function upgradeStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on("open", () => {
      ws.close();
      resolve(101);
    });
    ws.on("unexpected-response", (_req, res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    ws.on("error", reject);
  });
}

function metric(text: string, name: string, labels: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
}

describe("node addresses and loops", () => {
  let cluster: MemberCluster;
  let member: string;
  let agent: grpc.Client;
  const gateways: Gateway[] = [];
  let a: Gateway;
  let b: Gateway;
  let beat: NodeJS.Timeout | undefined;

  const register = (nodeId: string, address: string) => unary<{ generation: number }>(agent, "Register", { node_id: nodeId, address, capacity: 100, region: "", labels: {} });
  const refusal = async (address: string): Promise<string> => {
    try {
      await register("probe", address);
      return "OK";
    } catch (err) {
      return `${grpc.status[(err as grpc.ServiceError).code]}: ${(err as grpc.ServiceError).details}`;
    }
  };
  const gateway = async (extra: Record<string, unknown> = {}): Promise<Gateway> => {
    const g = await startGateway(validateGatewayConfig({ listen: "127.0.0.1:0", coordinators: member, logLevel: "silent", ...extra }));
    gateways.push(g);
    return g;
  };

  beforeAll(async () => {
    cluster = new MemberCluster(["n1"], undefined, { app: "coordinator", extraArgs: ["--node-address-allow", "127.0.0.0/8"] });
    cluster.start("n1");
    await cluster.waitForLeader();
    member = cluster.addresses.get("n1")!;
    agent = new NodeAgentClient(member, grpc.credentials.createInsecure());
    a = await gateway();
    b = await gateway();
  }, 60_000);

  afterAll(async () => {
    clearInterval(beat);
    for (const g of gateways) await g.close();
    agent?.close();
    await cluster?.close();
  });

  it("refuses, at Register, addresses no meeting server has, naming the address and the rule", async () => {
    expect(await refusal("169.254.169.254:80")).toBe("INVALID_ARGUMENT: address 169.254.169.254:80 is refused: a link-local address (169.254.0.0/16, fe80::/10) is never a meeting server's");
    expect(await refusal("[::ffff:169.254.169.254]:80")).toMatch(/^INVALID_ARGUMENT: address \[::ffff:169\.254\.169\.254\]:80 \(169\.254\.169\.254\) is refused: a link-local/);
    expect(await refusal("0.0.0.0:9001")).toMatch(/^INVALID_ARGUMENT: address 0\.0\.0\.0:9001 is refused: an unspecified address/);
    expect(await refusal(member)).toBe(`INVALID_ARGUMENT: address ${member} is refused: it is where one of the cluster's own processes listens (a coordinator member or the gateway), not a meeting server`);
    expect(await refusal(`localhost:${member.split(":")[1]}`)).toMatch(/own processes listens/);
    expect(await refusal("2852039166:80")).toMatch(/^INVALID_ARGUMENT: address 2852039166:80 is refused: its host reads as a shortened IPv4 address/);
    expect(await refusal("10.1.1.1:80")).toBe("INVALID_ARGUMENT: address 10.1.1.1:80 is refused: it is outside the networks node addresses must be in (node-address-allow: 127.0.0.0/8)");
    expect(await refusal("convene-test.invalid:80")).toMatch(/^INVALID_ARGUMENT: address convene-test\.invalid:80: host convene-test\.invalid does not resolve .*with node-address-allow set, a host name must resolve to allowed addresses/);
    expect(await refusal("127.0.0.1:29999")).toBe("OK");
  });

  it("refuses to proxy to its own address (502), and a request another gateway proxied there is a loop (508)", async () => {
    // A node registers gateway b's address: members cannot know it is a gateway.
    const r = await register("gw-node", b.address);
    beat = setInterval(() => void unary(agent, "Heartbeat", { node_id: "gw-node", generation: r.generation, active_meetings: 0, load: 0 }).catch(() => undefined), 300);
    await unary(agent, "Deregister", { node_id: "probe", generation: (await register("probe", "127.0.0.1:29999")).generation });

    const direct = await get(b.address, "/meetings/chain/");
    expect(direct.status).toBe(502);
    expect(direct.body).toEqual({ error: "node_address_refused", message: expect.stringMatching(new RegExp(`^meeting chain: its host gw-node registered the address ${b.address} is refused: it is where one of the cluster's own processes listens`)) });

    const chained = await get(a.address, "/meetings/chain/");
    expect(chained.status).toBe(508);
    expect(chained.body).toEqual({ error: "loop_detected", message: `this request already passed convene gateway ${a.gatewayId}: gateways proxy only to meeting servers, so its meeting's host address leads to a gateway; not proxied` });
    expect(await upgradeStatus(`ws://${a.address}/meetings/chain/ws`)).toBe(508);

    const metrics = (await get(b.address, "/metrics")).text;
    expect(metric(metrics, "convene_gateway_loops_refused_total", 'mark="other_gateway"')).toBe(2);
    expect(metric(metrics, "convene_gateway_node_address_refused_total", 'reason="own_address"')).toBeGreaterThanOrEqual(1);
    // GET /route reports the route; it connects to nothing.
    expect((await get(b.address, "/route/chain")).body).toMatchObject({ meetingId: "chain", nodeId: "gw-node", address: b.address });
  });

  it("refuses a request carrying its own mark, HTTP and WebSocket", async () => {
    const own = await get(a.address, "/meetings/chain/", { via: `1.0 edge-proxy, 1.1 ${a.gatewayId} (convene-gateway)` });
    expect(own.status).toBe(508);
    expect(own.body.message).toBe(`this request already passed this gateway (${a.gatewayId}): its meeting's host address leads back here; not proxied again`);
    const metrics = (await get(a.address, "/metrics")).text;
    expect(metric(metrics, "convene_gateway_loops_refused_total", 'mark="self"')).toBe(1);
  });

  it("refuses a node address outside its own allow list", async () => {
    const c = await gateway({ nodeAddressAllow: "10.0.0.0/8" });
    const answer = await get(c.address, "/meetings/chain/");
    expect(answer.status).toBe(502);
    expect(answer.body.message).toMatch(/is refused: it is outside the networks node addresses must be in \(node-address-allow: 10\.0\.0\.0\/8\)/);
    expect(metric((await get(c.address, "/metrics")).text, "convene_gateway_node_address_refused_total", 'reason="not_allowed"')).toBe(1);
  });
});

describe("the operator pages", () => {
  let cluster: MemberCluster;
  const gateways: Gateway[] = [];
  const token = newToken();
  const gateway = async (extra: Record<string, unknown>): Promise<Gateway> => {
    const g = await startGateway(validateGatewayConfig({ listen: "127.0.0.1:0", coordinators: cluster.addresses.get("n1")!, logLevel: "silent", ...extra }));
    gateways.push(g);
    return g;
  };
  /** /healthz once the gateway's first quorum probe answered (until then it rightly says 503). */
  const healthz = async (g: Gateway, address = g.address): Promise<Answer> => {
    for (const until = Date.now() + 15_000; !g.stats.healthy && Date.now() < until; ) await new Promise((r) => setTimeout(r, 20));
    return get(address, "/healthz");
  };
  /** A non-loopback IPv4 address of this host, if it has one. */
  const outside = Object.values(networkInterfaces()).flat().find((i) => i && i.family === "IPv4" && !i.internal)?.address;

  beforeAll(async () => {
    cluster = new MemberCluster(["n1"], undefined, { app: "coordinator" });
    cluster.start("n1");
    await cluster.waitForLeader();
  }, 60_000);

  afterAll(async () => {
    for (const g of gateways) await g.close();
    await cluster?.close();
  });

  it("serves them to this host's clients only by default, and /route and /healthz to anyone", async () => {
    const g = await gateway({ listen: "0.0.0.0:0" });
    const port = g.address.slice(g.address.lastIndexOf(":") + 1);
    for (const page of ["/", "/dashboard.json"]) expect((await get(`127.0.0.1:${port}`, page)).status).toBe(200);
    if (!outside) return; // no interface beyond loopback to connect from
    for (const page of ["/", "/dashboard.json"]) {
      const refused = await get(`${outside}:${port}`, page);
      expect(refused.status).toBe(403);
      expect(refused.body.error).toBe("forbidden");
    }
    expect((await get(`${outside}:${port}`, "/metrics")).status).toBe(200);
    expect((await healthz(g, `${outside}:${port}`)).status).toBe(200);
    expect((await get(`${outside}:${port}`, "/route/anyone")).status).not.toBe(403);
  });

  it("asks for the operator token, as a bearer token or a Basic password", async () => {
    const g = await gateway({ operatorPages: "token", metricsAccess: "token", operatorToken: token });
    for (const page of ["/", "/dashboard.json", "/metrics"]) {
      const none = await get(g.address, page);
      expect(none.status).toBe(401);
      expect(none.headers["www-authenticate"]).toBe('Basic realm="convene operator pages", charset="UTF-8"');
      expect(none.body.error).toBe("unauthorized");
      expect((await get(g.address, page, { authorization: `Bearer ${newToken()}` })).status).toBe(401);
      expect((await get(g.address, page, { authorization: `Bearer ${token}` })).status).toBe(200);
      expect((await get(g.address, page, { authorization: `Basic ${Buffer.from(`ops:${token}`).toString("base64")}` })).status).toBe(200);
    }
    expect((await healthz(g)).status).toBe(200);
  });

  it("turns them off", async () => {
    const g = await gateway({ operatorPages: "off", metricsAccess: "off" });
    for (const page of ["/", "/dashboard.json", "/metrics"]) {
      const off = await get(g.address, page);
      expect(off.status).toBe(404);
      expect(off.body.message).toMatch(/is turned off on this gateway/);
    }
    expect((await healthz(g)).status).toBe(200);
  });

  it("refuses a token setting without a strong token, naming the field", () => {
    expect(() => validateGatewayConfig({ operatorPages: "token" })).toThrow("operatorPages token needs operatorToken (flag --operator-token or $CONVENE_OPERATOR_TOKEN)");
    expect(() => validateGatewayConfig({ operatorPages: "token", operatorToken: "a".repeat(30) })).toThrow(/operatorToken is too weak: its estimated strength is 141 bits .* it repeats a few characters|operatorToken is too weak/);
    expect(() => validateGatewayConfig({ operatorPages: "public" })).toThrow("operatorPages must be one of off, loopback, token, open; got \"public\"");
    expect(() => validateGatewayConfig({ operatorToken: token })).toThrow(/operatorToken is given but neither operatorPages nor metricsAccess is token/);
  });
});
