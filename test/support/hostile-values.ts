/**
 * fast-check arbitraries of hostile values, shared by the fuzz tests: ids
 * that break API.md's rules, huge strings, numbers that are no uint64,
 * garbage bytes, and protobuf that does not decode. Each "bad" arbitrary
 * produces only values its rule refuses, so a request built from one is
 * invalid by construction (the tests still classify every request after
 * encoding it, since encoding can coerce a value into a valid one).
 */
import fc from "fast-check";
import { type WireField, varint, writeFields } from "./raw-grpc.js";

export const NODE_ID = /^[A-Za-z0-9._-]{1,64}$/;
export const MEETING_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Characters outside both id alphabets (':' is fine in meeting ids, so it is added for node ids only). */
const BAD_ID_CHARS = [
  " ", "/", "\\", "@", "\u0000", "\n", "\r\n", "\t", "\u007f", "é", "😀", "%", "%2F", "+", "*", "?", "#", "\u202e", "\u00a0",
  "\u200b", "\ud800", '"', "'", "<", ">", "{", "}", "[", "]", "|", "~", "!", "$", "&", ";", ",", "=", "ｍ", "\uffff",
];

/** Valid-looking names that stress maps and objects keyed by id. */
export const PROTOTYPE_NAMES = ["__proto__", "constructor", "prototype", "toString", "hasOwnProperty", "valueOf", "__defineGetter__"];

/** A string of `n` copies of one character: huge values without the cost of drawing each character. */
export function repeated(minLength: number, maxLength: number): fc.Arbitrary<string> {
  return fc.tuple(fc.constantFrom("x", "a", "é", "😀", "\u0000", "%", "/", "."), fc.integer({ min: minLength, max: maxLength })).map(([c, n]) => c.repeat(Math.max(1, Math.ceil(n / c.length))));
}

function badId(pattern: RegExp, maxLength: number, extraBad: readonly string[]): fc.Arbitrary<string> {
  const part = fc.stringMatching(/^[A-Za-z0-9._-]{0,12}$/);
  return fc.oneof(
    { weight: 1, arbitrary: fc.constant("") },
    { weight: 2, arbitrary: fc.stringMatching(new RegExp(`^[A-Za-z0-9._-]{${maxLength + 1},${maxLength + 200}}$`)) },
    { weight: 6, arbitrary: fc.tuple(part, fc.constantFrom(...BAD_ID_CHARS, ...extraBad), part).map(([a, bad, b]) => a + bad + b) },
    { weight: 2, arbitrary: fc.string({ unit: "grapheme", minLength: 1, maxLength: 40 }) },
    { weight: 1, arbitrary: fc.constantFrom("../../etc/passwd", "..%2f..%2f", "${jndi:ldap://x/a}", "<script>alert(1)</script>", "' OR 1=1 --", "n1\r\nX-Injected: 1", " m1", "m1 ") },
    { weight: 1, arbitrary: repeated(maxLength + 1, 300_000) },
  ).filter((s) => !pattern.test(s));
}

/** Strings API.md's node id rule refuses. */
export const badNodeId = (): fc.Arbitrary<string> => badId(NODE_ID, 64, [":"]);
/** Strings API.md's meeting id rule refuses. */
export const badMeetingId = (): fc.Arbitrary<string> => badId(MEETING_ID, 128, []);

/** Valid ids that no registered node or meeting has (the prefix keeps them apart from the fixture's). */
export function ghostId(maxLength: number): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.stringMatching(/^[A-Za-z0-9._-]{1,20}$/).map((s) => `zz-${s}`.slice(0, maxLength)) },
    { weight: 1, arbitrary: fc.constantFrom(...PROTOTYPE_NAMES) },
    { weight: 1, arbitrary: fc.constant(`zz-${"k".repeat(maxLength - 3)}`) },
  );
}

/** host:port values the address rule refuses (no port, port 0 or too big, schemes, paths, spaces, user info). */
export function badAddress(): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constantFrom(
      "", "no-port", "host:", ":80", "host:0", "host:65536", "host:99999999", "http://host:80", "host:80/path", "user@host:80", "host :80",
      "[::1]", "[zz]:80", "-host:80", "host:80\n", "host:-1", "host:80:81", "127.0.0.1:8o", "\u0000:80", "ホスト:80", "host:８０",
    ),
    repeated(300, 100_000).map((s) => `${s}:80`),
  );
}

/** Numbers that are no valid uint64 in a JavaScript number (or that encode to one that is not). */
export function hostileNumber(): fc.Arbitrary<number> {
  return fc.oneof(
    fc.constantFrom(-1, -0, 0.5, 1.5, -1e300, 1e300, 2 ** 53, 2 ** 53 + 2, 2 ** 63, 2 ** 64, 2 ** 64 + 4096, Number.NaN, Infinity, -Infinity, Number.MIN_VALUE),
    fc.integer({ min: -(2 ** 31), max: -1 }),
    fc.double({ noDefaultInfinity: false }),
  );
}

/**
 * Values for a uint64 field as a client may pass them to the generated
 * codec: hostile numbers, or decimal strings (which it reads as 64-bit
 * longs) past 2^53, at the 64-bit limits, or negative.
 */
export function hostileLong(): fc.Arbitrary<number | string> {
  return fc.oneof(
    { weight: 3, arbitrary: hostileNumber() },
    { weight: 1, arbitrary: fc.constantFrom("18446744073709551615", "18446744073709551616", "9223372036854775808", "9007199254740993", "9007199254740991", "-1", "-9223372036854775808", "0", "00000000000000000001") },
  );
}

/** Values for a 0..1 field that are out of range or no numbers at all. */
export function badLoad(): fc.Arbitrary<number> {
  return fc.oneof(fc.constantFrom(Number.NaN, Infinity, -Infinity, -0.0001, 1.0001, 2, 1e308, -1e308), fc.double({ min: 1.000001, max: 1e6 }), fc.double({ min: -1e6, max: -0.000001 }));
}

/** Garbage bytes of every size class. */
export function garbageBytes(): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 64 }) },
    { weight: 2, arbitrary: fc.uint8Array({ minLength: 65, maxLength: 4096 }) },
    { weight: 1, arbitrary: fc.constantFrom(0x00, 0xff, 0x0a, 0x80).chain((b) => fc.integer({ min: 1, max: 100_000 }).map((n) => new Uint8Array(n).fill(b))) },
  );
}

const wireField: fc.Arbitrary<WireField> = fc.oneof(
  fc.record({ field: fc.integer({ min: 1, max: 12 }), wire: fc.constant(0 as const), varint: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }) }),
  fc.record({ field: fc.integer({ min: 1, max: 12 }), wire: fc.constant(1 as const), fixed: fc.uint8Array({ minLength: 8, maxLength: 8 }) }),
  fc.record({ field: fc.integer({ min: 1, max: 12 }), wire: fc.constant(5 as const), fixed: fc.uint8Array({ minLength: 4, maxLength: 4 }) }),
  fc.record({
    field: fc.integer({ min: 1, max: 12 }),
    wire: fc.constant(2 as const),
    bytes: fc.uint8Array({ maxLength: 40 }),
    lengthDelta: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -3, max: 1000 }) }),
  }),
  fc.record({ field: fc.integer({ min: 1, max: 12 }), wire: fc.constantFrom(3 as const, 4 as const, 6 as const, 7 as const) }),
);

/**
 * Request bytes a generated client never sends, for a message whose valid
 * encoding `valid` gives: random fields with any wire type (wrong types for
 * known fields included), a valid encoding cut short, bit-flipped or with a
 * field of length past the end, overlong varints, and plain garbage.
 */
export function garbledMessage(valid: fc.Arbitrary<Buffer>): fc.Arbitrary<Buffer> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.array(wireField, { minLength: 1, maxLength: 6 }).map(writeFields) },
    { weight: 3, arbitrary: valid.filter((b) => b.length > 1).chain((b) => fc.integer({ min: 1, max: b.length - 1 }).map((n) => b.subarray(0, n))) },
    {
      weight: 2,
      arbitrary: fc.tuple(valid, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })), { minLength: 1, maxLength: 4 })).map(([b, flips]) => {
        const out = Buffer.from(b);
        if (out.length === 0) return Buffer.from([0xff]);
        for (const [at, bit] of flips) out[at % out.length]! ^= 1 << bit;
        return out;
      }),
    },
    { weight: 1, arbitrary: valid.map((b) => Buffer.concat([b, Buffer.from([0x0a, ...varint(1n << 40n)]), Buffer.from("short")])) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 8 }).map((field) => Buffer.from([(field << 3) | 0, ...varint(1n, 12)])) },
    { weight: 2, arbitrary: garbageBytes().map((b) => Buffer.from(b)) },
  );
}
