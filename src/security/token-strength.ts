/**
 * Whether a token is strong enough to stand for a role: the rule every
 * plaintext token in a tokens file must pass (TokenStore.parse). Pure.
 *
 * The rule, as operators read it:
 *   - at least MIN_TOKEN_CHARS characters (printable ASCII, no spaces:
 *     tokens.ts checks the shape), and
 *   - an estimated MIN_TOKEN_BITS bits: its length times log2 of the
 *     alphabet it draws from (26 for lower-case letters, 26 for upper-case,
 *     10 for digits, 32 for the other printable characters, added up for
 *     every class it uses), and
 *   - no run of a few characters repeated: at least MIN_BITS_PER_CHAR bits
 *     per character by the spread of the characters it holds (Shannon
 *     entropy of their frequencies).
 *
 * A random token passes easily: `convene certs` writes 43 base64url
 * characters (about 280 bits by this estimate), 32 random hex digits
 * estimate 165. "aaaa…" fails both measures, 24 random lower-case letters
 * (113 bits) the first. The estimate knows no words or keyboard walks: it
 * stops the trivially weak, it does not prove a token random.
 */

/** Shortest token, in characters. */
export const MIN_TOKEN_CHARS = 24;
/** Least estimated strength of a token, in bits. */
export const MIN_TOKEN_BITS = 128;
/** Least spread of a token's characters, in bits per character (8 characters used evenly give 3). */
export const MIN_BITS_PER_CHAR = 3;

const CLASSES: readonly { readonly size: number; readonly test: (code: number) => boolean }[] = [
  { size: 26, test: (c) => c >= 0x61 && c <= 0x7a },
  { size: 26, test: (c) => c >= 0x41 && c <= 0x5a },
  { size: 10, test: (c) => c >= 0x30 && c <= 0x39 },
];
/** Printable ASCII without the space: 94 characters, 32 of them neither letters nor digits. */
const OTHER_PRINTABLE = 32;

export interface TokenStrength {
  /** length × log2(alphabet of the classes used). */
  readonly bits: number;
  /** Shannon entropy of the character frequencies, per character. */
  readonly bitsPerChar: number;
}

/** The two measures of the rule above. */
export function tokenStrength(token: string): TokenStrength {
  let alphabet = 0;
  const used = new Set<number>();
  let other = false;
  const counts = new Map<string, number>();
  for (const ch of token) {
    counts.set(ch, (counts.get(ch) ?? 0) + 1);
    const code = ch.charCodeAt(0);
    const k = CLASSES.findIndex((c) => c.test(code));
    if (k >= 0) used.add(k);
    else other = true;
  }
  for (const k of used) alphabet += CLASSES[k]!.size;
  if (other) alphabet += OTHER_PRINTABLE;
  const n = token.length;
  let bitsPerChar = 0;
  for (const count of counts.values()) {
    const p = count / n;
    bitsPerChar -= p * Math.log2(p);
  }
  return { bits: n === 0 ? 0 : n * Math.log2(alphabet), bitsPerChar };
}

/** Why `token` is too weak, in words, or undefined when it passes the rule. */
export function tokenWeakness(token: string): string | undefined {
  if (token.length < MIN_TOKEN_CHARS) return `it has ${token.length} characters, fewer than ${MIN_TOKEN_CHARS}`;
  const s = tokenStrength(token);
  if (s.bits < MIN_TOKEN_BITS) {
    return `its estimated strength is ${Math.floor(s.bits)} bits (length × log2 of the alphabet it uses), under ${MIN_TOKEN_BITS}: make it longer or draw it from more kinds of characters`;
  }
  if (s.bitsPerChar < MIN_BITS_PER_CHAR) {
    return `it repeats a few characters (${s.bitsPerChar.toFixed(1)} bits per character by their spread, under ${MIN_BITS_PER_CHAR})`;
  }
  return undefined;
}

/** The rule in one sentence, for error messages. */
export const TOKEN_RULE =
  `at least ${MIN_TOKEN_CHARS} characters, an estimated ${MIN_TOKEN_BITS} bits (length × log2 of the alphabet used), ` +
  `and no few characters repeated; \`convene certs\` makes such tokens (or: openssl rand -base64 32)`;
