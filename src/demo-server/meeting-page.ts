/**
 * The chat page served at GET /meetings/{id}/: one self-contained HTML
 * document (inline CSS and script, no build step). Everything variable is
 * escaped: text through escapeHtml, the boot data as JSON with '<', '>',
 * '&' and the JS line separators escaped so it cannot end its <script>.
 * A per-response nonce lets the Content-Security-Policy allow only this
 * page's own script and style.
 *
 * Element ids are part of the contract with the browser tests and the
 * README walk-through: #node ("served by <nodeId> (pid <pid>)"),
 * #messages (children .message), #message-input, #send, #retry-dialog,
 * #retry-button, #retry-countdown; window.conveneDemo (page-script.ts).
 */
import { randomBytes } from "node:crypto";
import { PAGE_SCRIPT } from "./page-script.js";

export interface PageInfo {
  readonly meetingId: string;
  readonly nodeId: string;
  readonly pid: number;
  readonly epoch: number;
}

export interface RenderedPage {
  readonly html: string;
  readonly headers: Record<string, string>;
}

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** JSON that is safe inside a <script> element. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

const STYLE = `
  :root { color-scheme: light dark; --accent: #2563eb; --muted: #6b7280; --line: #d1d5db; }
  * { box-sizing: border-box; }
  [hidden] { display: none !important; }
  body { margin: 0; font: 15px/1.4 system-ui, sans-serif; height: 100vh; display: flex; flex-direction: column; }
  header { padding: 10px 16px; border-bottom: 1px solid var(--line); display: flex; gap: 16px; align-items: baseline; flex-wrap: wrap; }
  header h1 { font-size: 18px; margin: 0; }
  #node { font-family: ui-monospace, monospace; font-size: 13px; padding: 2px 8px; border-radius: 4px; background: rgba(37, 99, 235, 0.12); }
  #status { font-size: 12px; color: var(--muted); }
  body[data-state="disconnected"] #status { color: #dc2626; }
  main { flex: 1; display: flex; min-height: 0; }
  #messages { flex: 1; overflow-y: auto; padding: 8px 16px; }
  .message { padding: 3px 0; overflow-wrap: anywhere; white-space: pre-wrap; }
  .message time { color: var(--muted); font-size: 12px; margin-right: 8px; }
  .message .from { font-weight: 600; margin-right: 6px; }
  aside { width: 200px; border-left: 1px solid var(--line); padding: 8px 12px; overflow-y: auto; }
  aside h2 { font-size: 13px; margin: 0 0 6px; color: var(--muted); }
  #participants { list-style: none; margin: 0; padding: 0; }
  footer { border-top: 1px solid var(--line); padding: 10px 16px; display: flex; gap: 8px; align-items: center; }
  #my-name { font-weight: 600; }
  #message-input { flex: 1; padding: 6px 8px; font: inherit; }
  #send { padding: 6px 14px; font: inherit; }
  #notice { padding: 4px 16px; color: #b45309; }
  #retry-dialog { position: fixed; inset: 0; background: rgba(0, 0, 0, 0.35); display: flex; align-items: center; justify-content: center; }
  #retry-dialog .box { background: Canvas; color: CanvasText; padding: 20px 24px; border-radius: 8px; max-width: 360px; box-shadow: 0 8px 30px rgba(0, 0, 0, 0.3); }
  #retry-dialog p { margin: 0 0 12px; }
  #retry-countdown { color: var(--muted); font-size: 13px; }
  #retry-button { padding: 6px 14px; font: inherit; background: var(--accent); color: white; border: 0; border-radius: 4px; cursor: pointer; }
`;

/** The page for one held meeting; `headers` go on the response with it. */
export function renderMeetingPage(info: PageInfo): RenderedPage {
  const nonce = randomBytes(16).toString("base64");
  const boot = scriptJson({ meetingId: info.meetingId, nodeId: info.nodeId, pid: info.pid, epoch: info.epoch });
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(info.meetingId)} · convene demo</title>
<link rel="icon" href="data:,">
<style nonce="${nonce}">${STYLE}</style>
</head>
<body data-state="connecting">
<header>
  <h1>Meeting <span id="meeting-id">${escapeHtml(info.meetingId)}</span></h1>
  <span id="node">served by ${escapeHtml(info.nodeId)} (pid ${info.pid})</span>
  <span id="status">connecting</span>
</header>
<div id="notice" role="status" hidden></div>
<main>
  <div id="messages" aria-live="polite"></div>
  <aside><h2>In the room</h2><ul id="participants"></ul></aside>
</main>
<footer>
  <span id="my-name"></span>
  <input id="message-input" type="text" maxlength="2000" autocomplete="off" placeholder="Say something">
  <button id="send" type="button" disabled>Send</button>
</footer>
<div id="retry-dialog" role="alertdialog" aria-modal="true" aria-labelledby="retry-text" hidden>
  <div class="box">
    <p id="retry-text">The meeting server stopped responding. Try again?</p>
    <p id="retry-countdown"></p>
    <button id="retry-button" type="button">Try again</button>
  </div>
</div>
<script id="boot" type="application/json">${boot}</script>
<script nonce="${nonce}">${PAGE_SCRIPT}</script>
</body>
</html>
`;
  return {
    html,
    headers: {
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      "content-security-policy": [
        "default-src 'none'",
        `script-src 'nonce-${nonce}'`,
        `style-src 'nonce-${nonce}'`,
        "connect-src 'self' ws: wss:",
        "img-src data:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
      ].join("; "),
    },
  };
}
