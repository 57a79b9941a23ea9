/**
 * What a user sees, in headless Chromium: `convene start` runs the whole
 * local cluster (three members, a gateway, two demo meeting servers, all
 * separate processes); a page joins a meeting through the gateway and sends
 * messages; the meeting server named in the page header is killed with
 * kill -9; the page comes back by itself in the same meeting, on the other
 * server, with the whole history, and says so. Then, with no server left
 * and the page's requests answered 503 + Retry-After, it waits as told,
 * offers Try again, and Try again asks at once.
 *
 * Then HTTPS end to end: a gateway and a demo meeting server serving HTTPS
 * (and WSS) on their own ports (--tls-cert/--tls-key, certificates from
 * `convene certs --https`), the gateway reaching the meeting server over
 * HTTPS (--node-ca); the page joins and chats over https:// and wss://.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Gateway, startGateway, validateGatewayConfig } from "../src/gateway/index.js";
import { type DemoServer, decodeRoomState, startDemoServer, validateDemoServerConfig } from "../src/demo-server/index.js";
import { writeCerts } from "../src/security/certs.js";
import { loadProto, lookup } from "../src/wire/proto.js";
import { LocalCluster, launchChromium } from "./support/local-cluster.js";
import { MemberCluster, basePort, unary } from "./support/member-cluster.js";

const CoordinatorClient = lookup<grpc.ServiceClientConstructor>(loadProto("convene.proto"), "convene.v1.Coordinator");

describe("the demo in a real browser", () => {
  const port = basePort();
  const gateway = `http://127.0.0.1:${port + 10}`;
  let cluster: LocalCluster | undefined;
  let browser: Browser;

  beforeAll(async () => {
    cluster = await LocalCluster.start({ memberBasePort: port, gatewayPort: port + 10, demoBasePort: port + 20, checkpointIntervalMs: 500 });
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await cluster?.stop();
  }, 30_000);

  let page: Page;

  it("a meeting survives kill -9 of its server: the page comes back by itself on the other server with its history", async () => {
    page = await browser.newPage();
    const demo = () => page.evaluate(() => (window as unknown as { conveneDemo: { state: string; nodeId: string } }).conveneDemo);
    await page.goto(`${gateway}/meetings/browser-test/?name=tester`);
    await page.waitForFunction(() => (window as unknown as { conveneDemo?: { state: string } }).conveneDemo?.state === "connected", undefined, { timeout: 20_000 });
    const first = await demo();
    const header = await page.textContent("#node");
    const pid = Number(/pid (\d+)/.exec(header ?? "")?.[1]);
    expect(header).toContain(first.nodeId);
    expect(pid).toBeGreaterThan(0);

    const sent = ["hello", "is anyone here?", "the server is about to die"];
    for (const text of sent) {
      await page.fill("#message-input", text);
      await page.click("#send");
    }
    await page.waitForFunction((n) => document.querySelectorAll("#messages .message").length >= n, sent.length, { timeout: 10_000 });
    // The kill comes once the coordinator holds the whole history (however late the save, on a loaded machine).
    const coordinator = new CoordinatorClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    const checkpointed = async (): Promise<string[]> => {
      const c = await unary<{ state: Buffer }>(coordinator, "GetCheckpoint", { meeting_id: "browser-test" }, 5_000).catch(() => undefined);
      return c ? decodeRoomState(c.state).map((m) => m.text) : [];
    };
    await expect.poll(checkpointed, { timeout: 20_000, interval: 100 }).toEqual(sent);
    coordinator.close();

    process.kill(pid, "SIGKILL");
    const killedAt = Date.now();
    // No click: the page asks again at once, the gateway holds that request until the meeting has moved.
    await page.waitForFunction(
      (before) => {
        const d = (window as unknown as { conveneDemo: { state: string; nodeId: string } }).conveneDemo;
        return d.state === "connected" && d.nodeId !== before;
      },
      first.nodeId,
      { timeout: 30_000, polling: 20 },
    );
    const backAfter = Date.now() - killedAt;
    const second = await demo();
    expect(second.nodeId).not.toBe(first.nodeId);
    expect(await page.textContent("#node")).toContain(second.nodeId);
    expect(await page.textContent("#notice")).toBe(`Moved to ${second.nodeId}, history restored (${sent.length} messages).`);
    const texts = await page.$$eval("#messages .message", (els) => els.map((e) => e.textContent ?? ""));
    for (const text of sent) expect(texts.some((t) => t.includes(text))).toBe(true);
    console.log(`browser back in the meeting ${backAfter} ms after kill -9`);

    // The dashboard tells the same story: the server failed, its meeting moved (test/dashboard.test.ts checks the rest).
    const dashboard = await browser.newPage();
    await dashboard.goto(`${gateway}/`);
    const whats = () => dashboard.$$eval("#timeline tr td:nth-child(2)", (tds) => tds.map((td) => td.textContent ?? ""));
    await expect.poll(whats, { timeout: 10_000 }).toContain(`${first.nodeId} failed`);
  }, 90_000);

  it("honours Retry-After while nothing can take the meeting, shows Try again, and Try again asks at once", async () => {
    interface Attempt { at: number; status: number; retryAfterMs: number; nextInMs: number }
    const demo = () =>
      page.evaluate(() => (window as unknown as { conveneDemo: { state: string; pid: number; attempts: Attempt[] } }).conveneDemo);
    const { pid, state } = await demo();
    expect(state).toBe("connected");
    // Every request for the meeting's state is refused as a gateway does while no server can take it.
    const probes: number[] = [];
    await page.route("**/meetings/browser-test/state", (route) => {
      probes.push(Date.now());
      void route.fulfill({ status: 503, headers: { "retry-after": "2", "content-type": "application/json" }, body: '{"error":"no_room","message":"no live meeting server has room"}' });
    });
    process.kill(pid, "SIGKILL");
    await page.waitForFunction(() => (window as unknown as { conveneDemo: { attempts: unknown[] } }).conveneDemo.attempts.length >= 3, undefined, { timeout: 20_000 });
    const { attempts } = await demo();
    expect(attempts[0]).toMatchObject({ status: 503, retryAfterMs: 2000 });
    for (const a of attempts.slice(0, 2)) expect(a.nextInMs).toBeGreaterThanOrEqual(2000);
    for (let i = 1; i < probes.length; i++) expect(probes[i]! - probes[i - 1]!).toBeGreaterThanOrEqual(1900);
    // Past DIALOG_AFTER_MS the dialog offers Try again, with the countdown the Retry-After set.
    await page.waitForSelector("#retry-dialog", { state: "visible", timeout: 5_000 });
    expect(await page.textContent("#retry-dialog")).toContain("The meeting server stopped responding. Try again?");
    expect(await page.textContent("#retry-countdown")).toMatch(/^(Trying again in [12] s…|Reconnecting…)$/);
    const before = probes.length;
    await page.click("#retry-button");
    await expect.poll(() => probes.length, { timeout: 1_000, interval: 20 }).toBeGreaterThan(before);
    expect((await demo()).state).toBe("disconnected");
  }, 60_000);
});

describe("HTTPS on the gateway's and the demo server's own ports, in a real browser", () => {
  const dir = mkdtempSync(join(tmpdir(), "convene-https-"));
  const file = (name: string) => join(dir, name);
  let cluster: MemberCluster;
  let server: DemoServer;
  let gateway: Gateway;
  let browser: Browser;

  beforeAll(async () => {
    writeCerts({ outDir: dir, members: [], agents: [], https: [{ id: "gw", hosts: [] }, { id: "m9", hosts: [] }], days: 1, force: false });
    cluster = new MemberCluster(["n1"], undefined, { app: "coordinator" });
    cluster.start("n1");
    await cluster.waitForLeader();
    const coordinators = cluster.addresses.get("n1")!;
    server = await startDemoServer(
      validateDemoServerConfig({ nodeId: "m9", listen: "127.0.0.1:0", coordinators, checkpointIntervalMs: 500, logLevel: "warn", tlsCert: file("https-m9.crt"), tlsKey: file("https-m9.key") }),
    );
    gateway = await startGateway(
      validateGatewayConfig({ listen: "127.0.0.1:0", coordinators, logLevel: "warn", tlsCert: file("https-gw.crt"), tlsKey: file("https-gw.key"), nodeCa: file("ca.crt") }),
    );
    browser = await launchChromium(["--ignore-certificate-errors"]);
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
    await server?.close().catch(() => undefined);
    await cluster?.close();
    rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it("joins a meeting and chats over https:// and wss:// through the gateway", async () => {
    expect(gateway.scheme).toBe("https");
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    const sockets: string[] = [];
    page.on("websocket", (ws) => sockets.push(ws.url()));
    await page.goto(`https://${gateway.address}/meetings/https-room/?name=tls`);
    await page.waitForFunction(() => (window as unknown as { conveneDemo?: { state: string } }).conveneDemo?.state === "connected", undefined, { timeout: 20_000 });
    expect(await page.textContent("#node")).toContain("m9");
    await page.fill("#message-input", "over tls");
    await page.click("#send");
    await page.waitForFunction(() => [...document.querySelectorAll("#messages .message")].some((e) => e.textContent?.includes("over tls")), undefined, { timeout: 10_000 });
    expect(sockets.length).toBeGreaterThan(0);
    for (const url of sockets) expect(url).toMatch(new RegExp(`^wss://${gateway.address.replace(/\./g, "\\.")}/meetings/https-room/`));
    // The plain-HTTP port answers no HTTP: the gateway serves HTTPS only.
    await expect(fetch(`http://${gateway.address}/healthz`)).rejects.toThrow();
    await context.close();
  }, 60_000);
});
