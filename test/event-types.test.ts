/**
 * The one list of event names (src/wire/event-types.ts) is the proto's:
 * entry i of each list names enum value i of proto/convene.proto.
 */
import { describe, expect, it } from "vitest";
import { EVENT_TYPE_NAMES, MOVE_REASON_NAMES, eventTypeNumber, moveReasonNumber } from "../src/wire/event-types.js";
import { loadDefinition } from "../src/wire/proto.js";

function protoEnum(name: string): Map<number, string> {
  const found = loadDefinition("convene.proto")[name] as unknown as { type: { value: { name: string; number: number }[] } };
  return new Map(found.type.value.map((v) => [v.number, v.name]));
}

describe("event names", () => {
  it("EventType: entry i is the proto's value i", () => {
    const values = protoEnum("convene.v1.EventType");
    expect(values.size).toBe(EVENT_TYPE_NAMES.length);
    EVENT_TYPE_NAMES.forEach((name, i) => expect(values.get(i)).toBe(name));
    expect(eventTypeNumber("NODE_DEREGISTERED")).toBe(11);
  });

  it("MoveReason: entry i is the proto's value i without its REASON_ prefix", () => {
    const values = protoEnum("convene.v1.MoveReason");
    expect(values.size).toBe(MOVE_REASON_NAMES.length);
    MOVE_REASON_NAMES.forEach((name, i) => expect(values.get(i)).toBe(i === 0 ? "MOVE_REASON_UNSPECIFIED" : `REASON_${name}`));
    expect(moveReasonNumber("")).toBe(0);
    expect(moveReasonNumber("NODE_REREGISTERED")).toBe(7);
  });
});
