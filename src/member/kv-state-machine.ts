/**
 * A small replicated key-value store: the state machine that member
 * processes run until the coordinator's replaces it, and that the
 * durability tests and the raft benchmark drive. Commands are msgpackr
 * encoded; apply is deterministic.
 */
import { Packr } from "msgpackr";
import type { StateMachine } from "../raft-runtime/state-machine.js";

export type KvCommand =
  | { readonly op: "put"; readonly key: string; readonly value: string }
  | { readonly op: "cas"; readonly key: string; readonly expected: string | null; readonly value: string }
  /** Create-if-absent: sets the value only when the key has none; returns the current value. */
  | { readonly op: "create"; readonly key: string; readonly value: string };

export type KvApplyResult = { readonly ok: boolean; readonly value: string | null; readonly index: number };

const packr = new Packr({ useRecords: false });

export function encodeKvCommand(c: KvCommand): Uint8Array {
  return packr.pack(c);
}

export class KvStateMachine implements StateMachine {
  private values = new Map<string, string>();

  apply(command: Uint8Array, index: number): KvApplyResult {
    let c: KvCommand;
    try {
      c = packr.unpack(command) as KvCommand;
    } catch {
      // A command that cannot be decoded changes nothing, on every member alike.
      return { ok: false, value: null, index };
    }
    const current = this.values.get(c.key) ?? null;
    switch (c.op) {
      case "put":
        this.values.set(c.key, c.value);
        return { ok: true, value: c.value, index };
      case "cas":
        if (current !== c.expected) return { ok: false, value: current, index };
        this.values.set(c.key, c.value);
        return { ok: true, value: c.value, index };
      case "create":
        if (current !== null) return { ok: false, value: current, index };
        this.values.set(c.key, c.value);
        return { ok: true, value: c.value, index };
      default:
        return { ok: false, value: null, index };
    }
  }

  get(key: string): string | null {
    return this.values.get(key) ?? null;
  }

  size(): number {
    return this.values.size;
  }

  /** Every key and value, sorted: for comparing members in tests. */
  dump(): [string, string][] {
    return [...this.values].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  snapshot(): Uint8Array {
    return packr.pack([...this.values]);
  }

  restore(data: Uint8Array): void {
    this.values = new Map(packr.unpack(data) as [string, string][]);
  }
}
