/**
 * The simulation's replicated state machine: a key-value register store
 * with write, read and compare-and-set. Commands carry a unique op id and
 * are applied at most once (a duplicated proposal is a no-op), as a client
 * session table does in a real service.
 */
import type { KvOp, KvResult } from "../support/linearizability.js";

export interface KvCommand {
  /** Unique per client operation, e.g. "c1-17". */
  readonly opId: string;
  /** The member the client sent it to: only that member reports the result. */
  readonly via: string;
  readonly op: KvOp;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeCommand(c: KvCommand): Uint8Array {
  return encoder.encode(JSON.stringify(c));
}

export function decodeCommand(data: Uint8Array): KvCommand {
  return JSON.parse(decoder.decode(data)) as KvCommand;
}

export class KvMachine {
  private values = new Map<string, string>();
  private appliedOps = new Set<string>();

  /** Applies a write or cas; returns undefined when the op was applied before. */
  apply(cmd: KvCommand): KvResult | undefined {
    if (this.appliedOps.has(cmd.opId)) return undefined;
    this.appliedOps.add(cmd.opId);
    const op = cmd.op;
    switch (op.kind) {
      case "write":
        this.values.set(op.key, op.value);
        return { kind: "write" };
      case "cas": {
        const current = this.values.get(op.key) ?? null;
        if (current !== op.expected) return { kind: "cas", ok: false };
        this.values.set(op.key, op.value);
        return { kind: "cas", ok: true };
      }
      case "read":
        return { kind: "read", value: this.read(op.key) };
    }
  }

  read(key: string): string | null {
    return this.values.get(key) ?? null;
  }

  hasApplied(opId: string): boolean {
    return this.appliedOps.has(opId);
  }

  snapshot(): Uint8Array {
    return encoder.encode(JSON.stringify({ values: [...this.values], ops: [...this.appliedOps] }));
  }

  static restore(data: Uint8Array): KvMachine {
    const m = new KvMachine();
    if (data.length === 0) return m;
    const raw = JSON.parse(decoder.decode(data)) as { values: [string, string][]; ops: string[] };
    m.values = new Map(raw.values);
    m.appliedOps = new Set(raw.ops);
    return m;
  }
}
