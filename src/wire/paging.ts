/**
 * Paging of the list calls (ListMeetings, MemberAdmin.AuditLog): the
 * server's maxima and its page tokens. A token is opaque to callers
 * (base64url); inside it says which listing it continues and from where,
 * so a token of another listing or filter is refused, not misread.
 * Used by the members' handlers (a token in, the next one out) and by
 * callers that page through (`pageThrough`).
 */

/** Most meetings in one ListMeetings answer (about 1 MB of routes). */
export const MAX_MEETINGS_PAGE = 10_000;
/** Most entries in one AuditLog answer: what a coordinator keeps by default. */
export const MAX_AUDIT_PAGE = 1_000;

const VERSION = 1;

/** A page token that is not one this server gave for this listing. */
export class PageTokenError extends Error {
  readonly code = "INVALID_ARGUMENT";
  constructor(message: string) {
    super(message);
    this.name = "PageTokenError";
  }
}

/** page_size as asked (0, absent, or above the maximum: the maximum). */
export function pageSize(asked: unknown, max: number): number {
  return typeof asked === "number" && Number.isInteger(asked) && asked > 0 && asked < max ? asked : max;
}

interface TokenBody {
  readonly v: number;
  /** The listing: "meetings" or "audit". */
  readonly l: string;
  /** The filter the first page was asked with. */
  readonly f: string;
  /** Where the next page starts (exclusive for meetings: the last id given; inclusive for audit: the next index). */
  readonly a: string;
}

export function encodePageToken(listing: string, filter: string, after: string): string {
  const body: TokenBody = { v: VERSION, l: listing, f: filter, a: after };
  return Buffer.from(JSON.stringify(body), "utf8").toString("base64url");
}

/**
 * Where `token` continues `listing` filtered by `filter`; undefined for an
 * empty token (the first page). @throws PageTokenError naming page_token.
 */
export function decodePageToken(token: unknown, listing: string, filter: string): string | undefined {
  if (token === undefined || token === "") return undefined;
  let body: Partial<TokenBody> | undefined;
  if (typeof token === "string" && token.length <= 1024 && /^[A-Za-z0-9_-]+$/.test(token)) {
    try {
      body = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as Partial<TokenBody>;
    } catch {
      body = undefined;
    }
  }
  if (!body || body.v !== VERSION || body.l !== listing || typeof body.f !== "string" || typeof body.a !== "string") {
    throw new PageTokenError(`page_token is not a next_page_token this server gave for ${listing}; start again with an empty page_token`);
  }
  if (body.f !== filter) {
    throw new PageTokenError(`page_token continues a listing filtered by ${JSON.stringify(body.f)}, not ${JSON.stringify(filter)}: keep the filter while paging`);
  }
  return body.a;
}

/**
 * Calls `fetch` with each page's token until the answer's next_page_token
 * is empty, and concatenates the items. `maxPages` bounds a server that
 * would never end the listing.
 */
export async function pageThrough<T>(
  fetch: (pageToken: string) => Promise<{ items: readonly T[]; nextPageToken: string | undefined }>,
  maxPages = 100_000,
): Promise<T[]> {
  const all: T[] = [];
  let token = "";
  for (let page = 0; page < maxPages; page++) {
    const { items, nextPageToken } = await fetch(token);
    all.push(...items);
    if (!nextPageToken) return all;
    token = nextPageToken;
  }
  throw new Error(`the listing did not end after ${maxPages} pages`);
}
