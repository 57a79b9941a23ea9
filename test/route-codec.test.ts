/**
 * The hand-written Route and ListMeetingsResponse encoders: whatever they
 * write, protobufjs (the decoder every grpc-js client here uses) must read
 * back as exactly the routes given.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type * as grpc from "@grpc/grpc-js";
import { encodeListMeetingsResponse, encodeRoute, withRouteEncoders } from "../src/coordinator/service/route-codec.js";
import { loadProto, lookup } from "../src/wire/proto.js";

const service = lookup<grpc.ServiceClientConstructor>(loadProto("convene.proto"), "convene.v1.Coordinator").service;
const decodeRoute = (b: Buffer) => service["GetRoute"]!.responseDeserialize(b) as unknown;
const decodeList = (b: Buffer) => service["ListMeetings"]!.responseDeserialize(b) as unknown;

const route = fc.record({
  meeting_id: fc.string({ unit: "binary", maxLength: 200 }),
  node_id: fc.string({ unit: "grapheme", maxLength: 40 }),
  address: fc.string({ maxLength: 300 }),
  epoch: fc.oneof(fc.nat(), fc.maxSafeNat(), fc.constantFrom(0, 127, 128, 16_383, 16_384, 2 ** 32, 2 ** 53 - 1)),
  created: fc.boolean(),
  revision: fc.oneof(fc.nat(), fc.maxSafeNat(), fc.constantFrom(0, 127, 128, 2 ** 53 - 1)),
});

describe("route codec", () => {
  it("encodes any route so that protobufjs decodes exactly it", () => {
    fc.assert(
      fc.property(route, (r) => {
        expect(decodeRoute(encodeRoute(r))).toEqual(r);
      }),
      { numRuns: 2_000 },
    );
  });

  it("encodes any list of routes, with its next page token, so that protobufjs decodes exactly it", () => {
    fc.assert(
      fc.property(fc.array(route, { maxLength: 50 }), fc.oneof(fc.constant(""), fc.string({ unit: "grapheme", maxLength: 300 })), (meetings, token) => {
        expect(decodeList(encodeListMeetingsResponse({ meetings, next_page_token: token }))).toEqual({ meetings, next_page_token: token });
      }),
      { numRuns: 500 },
    );
  });

  it("writes the bytes protobufjs writes for a typical route", () => {
    const r = { meeting_id: "room-1", node_id: "s1", address: "127.0.0.1:9000", epoch: 300, created: true, revision: 123_456 };
    expect(encodeRoute(r).equals(service["GetRoute"]!.responseSerialize(r))).toBe(true);
  });

  it("refuses an epoch that is not a non-negative safe integer rather than writing wrong bytes", () => {
    for (const epoch of [-1, 1.5, 2 ** 53, Number.NaN]) {
      expect(() => encodeRoute({ meeting_id: "m", node_id: "n", address: "a", epoch })).toThrow(/epoch/);
    }
  });

  it("is what the member's Coordinator service answers with", () => {
    const wrapped = withRouteEncoders(service);
    const r = { meeting_id: "room-1", node_id: "s1", address: "a:1", epoch: 2, created: false, revision: 9 };
    expect(decodeRoute(wrapped["GetRoute"]!.responseSerialize(r))).toEqual(r);
    expect(wrapped["ListMeetings"]!.responseSerialize({ meetings: [r] }).equals(encodeListMeetingsResponse({ meetings: [r] }))).toBe(true);
  });
});
