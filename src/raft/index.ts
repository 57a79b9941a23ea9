/** The public surface of the Raft layer: everything other layers may import. */
export { RawNode, type Status } from "./raw-node.js";
export { type RaftConfig, type TestingBugs, ReadOnlyOption, defaultConfig, validateConfig } from "./config.js";
export { type Storage, type InitialState, type LogPosition, type StoredLog, MemoryStorage, emptySnapshot } from "./storage.js";
export { SeededRandom, type RandomSource } from "./random.js";
export { encodeConfChange, decodeConfChange } from "./conf-change.js";
export { InvalidMessageError, validateMessage } from "./message-validation.js";
export type { ProposalPosition } from "./raft.js";
export * from "./errors.js";
export * from "./types.js";
