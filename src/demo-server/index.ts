/**
 * The demo meeting server's public surface: what the CLI and the tests
 * import. Everything else in src/demo-server/ is internal.
 */
export { startDemoServer } from "./demo-server.js";
export type { DemoServer, DemoServerCloseOptions } from "./demo-server.js";
export { demoServerDefaults, validateDemoServerConfig } from "./demo-config.js";
export type { DemoServerConfig, LogLevel } from "./demo-config.js";
export { DemoServerConfigError, DemoServerError, RoomStateError } from "./errors.js";
export { ChatRoom, MAX_HISTORY_BYTES, MAX_HISTORY_MESSAGES } from "./chat-room.js";
export { MAX_ROOM_STATE_BYTES, decodeRoomState, encodeRoomState } from "./room-state-codec.js";
export { MAX_NAME_CHARS, MAX_TEXT_CHARS, MAX_WS_MESSAGE_BYTES, parseClientMessage } from "./chat-protocol.js";
export type { ChatMessage, ClientMessage, ServerMessage } from "./chat-protocol.js";
export { CLOSE_MOVED } from "./room-registry.js";
