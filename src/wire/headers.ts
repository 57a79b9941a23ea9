/**
 * gRPC metadata names shared by members and their clients (the gateway,
 * the node agent, the CLI): what a member adds to a forwarded call and what
 * it answers with.
 */

/** Marks a forwarded call, so a member never forwards it again (no loops while leadership moves). */
export const FORWARDED_HEADER = "x-convene-forwarded";
/**
 * Sent back (response metadata) with the answer to a forwarded call: the
 * leader's address. A client that knows that address among its members may
 * send its next calls there and save the extra hop; it need not.
 */
export const LEADER_HINT_HEADER = "x-convene-leader";
/**
 * The forwarded call's deadline as wall-clock milliseconds. grpc's own
 * timeout header is relative and restarts when the request arrives, so a
 * request held up on a broken link would arrive with its full time left;
 * the leader refuses one that arrives past this.
 */
export const FORWARD_DEADLINE_HEADER = "x-convene-deadline";
