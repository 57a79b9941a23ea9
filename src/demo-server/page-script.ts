/**
 * The chat page's browser script, inlined by meeting-page.ts (no build
 * step). Plain ES2017 in a string: the project's TypeScript has no DOM
 * types, and the page must run as served. Kept free of backticks and
 * "${" so it can live in a String.raw template.
 *
 * Connection life (window.conveneDemo.state mirrors it for tests):
 *   connecting ─ welcome ─> connected ─ close / error / 5 s silence ─> disconnected
 *   disconnected: the page asks for the meeting's state (GET ./state, a
 *   plain request, so the gateway can hold it until the meeting has moved,
 *   and a refusal carries its status and Retry-After, which a failed
 *   WebSocket hides) at once, then after a backoff of 250 ms doubling to
 *   8 s, and never sooner than a Retry-After says. Once ./state answers,
 *   it opens the WebSocket again. The WebSocket URL is relative to the
 *   page, so a page loaded through the gateway reconnects through it and
 *   lands wherever the meeting lives now.
 *   #retry-dialog shows only when the reconnect takes longer than
 *   DIALOG_AFTER_MS; "Try again" asks at once. It stays until a welcome.
 * The welcome re-renders the whole history and the header's node, so after
 * a move the page shows what the new server restored, and says so
 * ("Moved to m1, history restored (3 messages)."). Each message sent
 * is kept until the server echoes it back; whatever is not echoed when the
 * connection ends (refused because the meeting is moving, or sent while the
 * socket closed) is sent again after the next welcome, so a planned move
 * loses nothing the user typed.
 */
export const PAGE_SCRIPT = String.raw`
(function () {
  "use strict";
  var PING_MS = 2000, SILENCE_MS = 5000, CONNECT_TIMEOUT_MS = 5000, PROBE_TIMEOUT_MS = 5000;
  var FIRST_BACKOFF_MS = 250, MAX_BACKOFF_MS = 8000, DIALOG_AFTER_MS = 1500;
  var MAX_NAME = 40, MAX_TEXT = 2000;
  var boot = JSON.parse(document.getElementById("boot").textContent);
  function el(id) { return document.getElementById(id); }
  var messagesEl = el("messages"), input = el("message-input"), sendBtn = el("send"), nodeEl = el("node");
  var dialog = el("retry-dialog"), retryBtn = el("retry-button"), countdownEl = el("retry-countdown");
  var statusEl = el("status"), peopleEl = el("participants"), noticeEl = el("notice");

  var demo = {
    state: "connecting", nodeId: boot.nodeId, pid: boot.pid, epoch: boot.epoch, meetingId: boot.meetingId,
    name: "", connects: 0, messages: 0, lastError: "", resent: 0,
    // Reconnect attempts since the connection was lost: { at, status, retryAfterMs, nextInMs }.
    attempts: [], nextRetryAt: 0, lostAt: 0, lastReconnectMs: 0,
    // When the last reconnect passed each step (Date.now()), for the browser benchmark.
    steps: { lost: 0, asked: 0, answered: 0, opened: 0, welcomed: 0 }
  };
  window.conveneDemo = demo;

  var name = pickName();
  demo.name = name;
  el("my-name").textContent = name;

  var ws = null, lastHeard = 0, pingTimer = null, watchdog = null, countdown = null, retryTimer = null, dialogTimer = null;
  var probing = null, failures = 0, nodeBeforeLoss = "";
  var unacked = [];

  function pickName() {
    var q = null;
    try { q = new URLSearchParams(location.search).get("name"); } catch (e) { q = null; }
    if (q) {
      q = q.replace(/[\u0000-\u001f\u007f-\u009f]/g, "").trim().slice(0, MAX_NAME).trim();
      if (q) return q;
    }
    return "guest-" + String(1000 + Math.floor(Math.random() * 9000));
  }

  function setState(s) {
    demo.state = s;
    statusEl.textContent = s;
    document.body.setAttribute("data-state", s);
    sendBtn.disabled = s !== "connected";
  }

  function notice(text) {
    noticeEl.textContent = text || "";
    noticeEl.hidden = !text;
  }

  function send(m) {
    if (!ws || ws.readyState !== 1) return false;
    try { ws.send(JSON.stringify(m)); return true; } catch (e) { return false; }
  }

  function teardown() {
    clearInterval(pingTimer);
    clearInterval(watchdog);
    pingTimer = null;
    watchdog = null;
    var old = ws;
    ws = null;
    if (old) {
      old.onopen = old.onmessage = old.onclose = old.onerror = null;
      try { old.close(); } catch (e) { /* already closed */ }
    }
  }

  function stopCountdown() {
    clearInterval(countdown);
    clearTimeout(retryTimer);
    countdown = null;
    retryTimer = null;
  }

  function connect() {
    stopCountdown();
    teardown();
    setState("connecting");
    countdownEl.textContent = "Connecting\u2026";
    var url = new URL("ws", location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.search = "";
    url.hash = "";
    var sock;
    try { sock = new WebSocket(url.href); } catch (e) { lost("cannot open a WebSocket"); return; }
    ws = sock;
    lastHeard = Date.now();
    sock.onopen = function () {
      if (ws !== sock) return;
      lastHeard = Date.now();
      demo.steps.opened = lastHeard;
      send({ type: "join", name: name });
    };
    sock.onmessage = function (ev) {
      if (ws !== sock) return;
      lastHeard = Date.now();
      var m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      handle(m);
    };
    sock.onclose = function (ev) { if (ws === sock) lost("closed (" + ev.code + (ev.reason ? " " + ev.reason : "") + ")"); };
    sock.onerror = function () { if (ws === sock) lost("connection error"); };
    pingTimer = setInterval(function () { if (ws === sock) send({ type: "ping" }); }, PING_MS);
    watchdog = setInterval(function () {
      if (ws !== sock) return;
      var limit = sock.readyState === 1 ? SILENCE_MS : CONNECT_TIMEOUT_MS;
      if (Date.now() - lastHeard > limit) lost("no answer for " + Math.round(limit / 1000) + " s");
    }, 500);
  }

  function lost(why) {
    var wasConnected = demo.state === "connected";
    teardown();
    demo.lastError = why;
    setState("disconnected");
    if (dialogTimer === null && dialog.hidden) {
      dialogTimer = setTimeout(function () { if (demo.state !== "connected") dialog.hidden = false; }, DIALOG_AFTER_MS);
    }
    if (wasConnected) {
      // A new outage: start the backoff over, ask at once.
      nodeBeforeLoss = demo.nodeId;
      demo.lostAt = Date.now();
      demo.steps = { lost: demo.lostAt, asked: 0, answered: 0, opened: 0, welcomed: 0 };
      demo.attempts = [];
      failures = 0;
      notice("The meeting server stopped responding; reconnecting\u2026");
      retryNow();
      return;
    }
    failures += 1;
    scheduleRetry(backoffMs(), 0);
  }

  /** The next wait: 250 ms doubling to 8 s, jittered by up to a fifth so many pages do not come back in step. */
  function backoffMs() {
    var base = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * Math.pow(2, Math.max(0, failures - 1)));
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  /** Retry-After in ms (delta-seconds or an HTTP date), 0 when absent or unreadable. */
  function retryAfterMs(res) {
    var v = res && res.headers ? res.headers.get("retry-after") : null;
    if (!v) return 0;
    if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
    var at = Date.parse(v);
    return isNaN(at) ? 0 : Math.max(0, at - Date.now());
  }

  function scheduleRetry(waitMs, retryAfter) {
    stopCountdown();
    var due = Date.now() + waitMs;
    demo.nextRetryAt = due;
    var show = function () {
      var left = Math.ceil((due - Date.now()) / 1000);
      countdownEl.textContent = left >= 1 ? "Trying again in " + left + " s\u2026" : "Reconnecting\u2026";
    };
    show();
    countdown = setInterval(show, 250);
    retryTimer = setTimeout(retryNow, waitMs);
    if (demo.attempts.length > 0) demo.attempts[demo.attempts.length - 1].nextInMs = waitMs;
    if (retryAfter > 0) demo.lastError += " (retry after " + Math.round(retryAfter / 1000) + " s)";
  }

  /**
   * One reconnect attempt: asks the meeting's state over plain HTTP first.
   * Through the gateway this waits while the meeting moves, and a refusal
   * says when to come back (Retry-After); only then the WebSocket.
   */
  function retryNow() {
    stopCountdown();
    if (probing) return;
    countdownEl.textContent = "Reconnecting\u2026";
    var attempt = { at: Date.now(), status: 0, retryAfterMs: 0, nextInMs: 0 };
    demo.steps.asked = attempt.at;
    demo.attempts.push(attempt);
    var ctl = typeof AbortController === "function" ? new AbortController() : null;
    var timer = setTimeout(function () { if (ctl) ctl.abort(); }, PROBE_TIMEOUT_MS);
    probing = fetch("state", { cache: "no-store", headers: { accept: "application/json" }, signal: ctl ? ctl.signal : undefined })
      .then(function (res) {
        attempt.status = res.status;
        demo.steps.answered = Date.now();
        if (res.ok) return true;
        failures += 1;
        attempt.retryAfterMs = retryAfterMs(res);
        demo.lastError = "the gateway answered " + res.status;
        scheduleRetry(Math.max(backoffMs(), attempt.retryAfterMs), attempt.retryAfterMs);
        return false;
      }, function (e) {
        failures += 1;
        demo.lastError = "cannot reach the meeting (" + (e && e.name === "AbortError" ? "no answer" : "network error") + ")";
        scheduleRetry(backoffMs(), 0);
        return false;
      })
      .then(function (reachable) {
        clearTimeout(timer);
        probing = null;
        if (reachable && demo.state !== "connected") connect();
      });
  }

  function handle(m) {
    if (!m || typeof m !== "object") return;
    switch (m.type) {
      case "welcome": welcome(m); break;
      case "message":
        if (m.from === name) {
          var k = unacked.indexOf(String(m.text));
          if (k >= 0) unacked.splice(k, 1);
        }
        addMessage(m);
        scrollDown();
        break;
      case "participants": renderPeople(m.participants); break;
      case "error":
        // Refused for good (not because the meeting moves): do not send it again.
        if (m.error !== "moving" && m.error !== "read_only" && unacked.length > 0) unacked.pop();
        notice(String(m.message || m.error));
        break;
      default: break;
    }
  }

  function welcome(m) {
    demo.nodeId = String(m.nodeId);
    demo.pid = m.pid;
    demo.epoch = m.epoch;
    demo.connects += 1;
    nodeEl.textContent = "served by " + m.nodeId + " (pid " + m.pid + ")";
    messagesEl.textContent = "";
    demo.messages = 0;
    var history = Array.isArray(m.history) ? m.history : [];
    for (var i = 0; i < history.length; i++) addMessage(history[i]);
    scrollDown();
    renderPeople(m.participants);
    stopCountdown();
    clearTimeout(dialogTimer);
    dialogTimer = null;
    dialog.hidden = true;
    if (demo.lostAt > 0) {
      demo.steps.welcomed = Date.now();
      demo.lastReconnectMs = demo.steps.welcomed - demo.lostAt;
      demo.lostAt = 0;
      var count = history.length + (history.length === 1 ? " message" : " messages");
      if (nodeBeforeLoss && nodeBeforeLoss !== demo.nodeId) notice("Moved to " + demo.nodeId + ", history restored (" + count + ").");
      else notice("Reconnected to " + demo.nodeId + " (" + count + ").");
    } else {
      notice("");
    }
    setState("connected");
    for (var j = 0; j < unacked.length; j++) {
      if (send({ type: "say", text: unacked[j] })) demo.resent += 1;
    }
  }

  function addMessage(m) {
    var row = document.createElement("div");
    row.className = "message";
    var from = document.createElement("span");
    from.className = "from";
    from.textContent = String(m.from);
    var text = document.createElement("span");
    text.className = "text";
    text.textContent = String(m.text);
    var at = document.createElement("time");
    var d = new Date(Number(m.at));
    at.textContent = isNaN(d.getTime()) ? "" : d.toLocaleTimeString();
    if (!isNaN(d.getTime())) at.setAttribute("datetime", d.toISOString());
    row.appendChild(at);
    row.appendChild(from);
    row.appendChild(text);
    messagesEl.appendChild(row);
    demo.messages += 1;
  }

  function scrollDown() { messagesEl.scrollTop = messagesEl.scrollHeight; }

  function renderPeople(list) {
    peopleEl.textContent = "";
    var names = Array.isArray(list) ? list : [];
    for (var i = 0; i < names.length; i++) {
      var li = document.createElement("li");
      li.textContent = String(names[i]);
      peopleEl.appendChild(li);
    }
  }

  function sendText() {
    var t = input.value;
    if (!t.trim() || demo.state !== "connected") return;
    if (t.length > MAX_TEXT) { notice("A message may have at most " + MAX_TEXT + " characters."); return; }
    if (send({ type: "say", text: t })) { unacked.push(t); input.value = ""; notice(""); }
  }

  sendBtn.addEventListener("click", sendText);
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); sendText(); }
  });
  retryBtn.addEventListener("click", function () { retryNow(); });

  connect();
})();
`;
