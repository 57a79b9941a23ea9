/**
 * Hand-written protobuf encoding of the `Route` and `ListMeetingsResponse`
 * messages, the coordinator's largest answers.
 *
 * Why: protobufjs (behind @grpc/proto-loader) serialises a ListMeetings of
 * 100,000 meetings (4 MB) in 250-400 ms, in one synchronous call on the
 * leader's event loop, longer than an election timeout on a loaded machine.
 * Writing the wire format directly takes a tenth of that. The bytes are
 * plain proto3 (fields in number order, default values omitted), so any
 * protobuf decoder, ours included, reads them.
 *
 *   Route                { 1: meeting_id, 2: node_id, 3: address, 4: epoch (uint64), 5: created (bool), 6: revision (uint64) }
 *   ListMeetingsResponse { repeated 1: Route meetings }
 */
import type * as grpc from "@grpc/grpc-js";

export interface RouteWire {
  readonly meeting_id: string;
  readonly node_id: string;
  readonly address: string;
  readonly epoch: number;
  readonly created?: boolean;
  /** GetRoute's answers only (ListMeetings leaves it out). */
  readonly revision?: number;
}

const WIRE_VARINT = 0;
const WIRE_LENGTH_DELIMITED = 2;

const tag = (field: number, wireType: number) => (field << 3) | wireType;

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** Writes a non-negative safe integer as a varint; returns the next offset. */
function writeVarint(out: Buffer, at: number, n: number): number {
  while (n >= 0x80) {
    out[at++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  out[at++] = n;
  return at;
}

/** Encoded sizes of one route's strings (negative: all ASCII, see utf8Size) and of the whole message body. */
interface Sized {
  readonly meetingBytes: number;
  readonly nodeBytes: number;
  readonly addressBytes: number;
  readonly body: number;
}

function stringFieldSize(size: number): number {
  const bytes = Math.abs(size);
  return bytes === 0 ? 0 : 1 + varintSize(bytes) + bytes;
}

/**
 * A string's UTF-8 length, as a negative number when it is all ASCII (the
 * usual id or address): those are copied char by char, which is several
 * times faster than Buffer's general path for strings this short.
 */
function utf8Size(value: string): number {
  for (let i = 0; i < value.length; i++) {
    if (value.charCodeAt(i) >= 0x80) return Buffer.byteLength(value, "utf8");
  }
  return -value.length;
}

function sizeRoute(r: RouteWire): Sized {
  const meetingBytes = utf8Size(r.meeting_id);
  const nodeBytes = utf8Size(r.node_id);
  const addressBytes = utf8Size(r.address);
  const body =
    stringFieldSize(meetingBytes) +
    stringFieldSize(nodeBytes) +
    stringFieldSize(addressBytes) +
    (r.epoch > 0 ? 1 + varintSize(r.epoch) : 0) +
    (r.created ? 2 : 0) +
    (r.revision ? 1 + varintSize(r.revision) : 0);
  return { meetingBytes, nodeBytes, addressBytes, body };
}

function writeString(out: Buffer, at: number, field: number, value: string, size: number): number {
  if (size === 0) return at;
  out[at++] = tag(field, WIRE_LENGTH_DELIMITED);
  at = writeVarint(out, at, Math.abs(size));
  if (size > 0) return at + out.write(value, at, size, "utf8");
  for (let i = 0; i < value.length; i++) out[at++] = value.charCodeAt(i);
  return at;
}

function writeRoute(out: Buffer, at: number, r: RouteWire, s: Sized): number {
  at = writeString(out, at, 1, r.meeting_id, s.meetingBytes);
  at = writeString(out, at, 2, r.node_id, s.nodeBytes);
  at = writeString(out, at, 3, r.address, s.addressBytes);
  if (r.epoch > 0) {
    out[at++] = tag(4, WIRE_VARINT);
    at = writeVarint(out, at, r.epoch);
  }
  if (r.created) {
    out[at++] = tag(5, WIRE_VARINT);
    out[at++] = 1;
  }
  if (r.revision) {
    out[at++] = tag(6, WIRE_VARINT);
    at = writeVarint(out, at, r.revision);
  }
  return at;
}

function checkEpoch(r: RouteWire): void {
  if (!Number.isSafeInteger(r.epoch) || r.epoch < 0) throw new RangeError(`route epoch must be a non-negative safe integer, got ${r.epoch}`);
  if (r.revision !== undefined && (!Number.isSafeInteger(r.revision) || r.revision < 0)) throw new RangeError(`route revision must be a non-negative safe integer, got ${r.revision}`);
}

export function encodeRoute(r: RouteWire): Buffer {
  checkEpoch(r);
  const s = sizeRoute(r);
  const out = Buffer.allocUnsafe(s.body);
  writeRoute(out, 0, r, s);
  return out;
}

export function encodeListMeetingsResponse(response: { readonly meetings: readonly RouteWire[]; readonly next_page_token?: string }): Buffer {
  const sized = response.meetings.map((r) => {
    checkEpoch(r);
    return sizeRoute(r);
  });
  let total = 0;
  for (const s of sized) total += 1 + varintSize(s.body) + s.body;
  const token = Buffer.from(response.next_page_token ?? "", "utf8");
  if (token.length > 0) total += 1 + varintSize(token.length) + token.length;
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  response.meetings.forEach((r, i) => {
    const s = sized[i]!;
    out[at++] = tag(1, WIRE_LENGTH_DELIMITED);
    at = writeVarint(out, at, s.body);
    at = writeRoute(out, at, r, s);
  });
  if (token.length > 0) {
    out[at++] = tag(2, WIRE_LENGTH_DELIMITED);
    at = writeVarint(out, at, token.length);
    at += token.copy(out, at);
  }
  return out;
}

/** The Coordinator service definition, answering GetRoute and ListMeetings with the encoders above. */
export function withRouteEncoders(service: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const getRoute = service["GetRoute"];
  const listMeetings = service["ListMeetings"];
  if (!getRoute || !listMeetings) throw new Error("the Coordinator service must define GetRoute and ListMeetings");
  return {
    ...service,
    GetRoute: { ...getRoute, responseSerialize: (r: RouteWire) => encodeRoute(r) },
    ListMeetings: { ...listMeetings, responseSerialize: (r: { meetings: readonly RouteWire[]; next_page_token?: string }) => encodeListMeetingsResponse(r) },
  };
}
