/**
 * The client side of the record: every operation the workload (and the
 * final reads) made, with the times it was called and answered. `ret` is
 * absent when the outcome is unknown (deadline, connection lost): such an
 * operation may or may not have taken effect.
 *
 * Written by load.ts and final-state.ts, read by checks.ts.
 */

/** A route as answered: by Coordinator.GetRoute (grpc) or by a gateway's GET /route (gateway). */
export interface RouteOp {
  readonly kind: "route";
  readonly client: number;
  readonly via: "grpc" | "gateway";
  /** The gateway instance ("g1@pid") for via=gateway, when it did not change during the call. */
  readonly gateway?: string;
  readonly meetingId: string;
  readonly create: boolean;
  readonly call: number;
  ret?: number;
  /** Present when answered with a route. */
  route?: { readonly nodeId: string; readonly epoch: number; readonly created?: boolean };
  /** Answered NOT_FOUND (404): no such meeting. */
  notFound?: boolean;
  error?: string;
}

/** A request proxied by a gateway to the meeting's server: GET /meetings/{id}/op. */
export interface ServeOp {
  readonly kind: "serve";
  readonly client: number;
  readonly gateway: string;
  readonly meetingId: string;
  readonly call: number;
  ret?: number;
  status?: number;
  /** X-Convene-Node of the answer. */
  headerNode?: string;
  /** What the server said it was: node, epoch, generation, the meeting's counter. */
  served?: { readonly nodeId: string; readonly epoch: number; readonly generation: number; readonly counter: number };
  error?: string;
}

/** Coordinator.GetCheckpoint. */
export interface CheckpointReadOp {
  readonly kind: "checkpoint";
  readonly client: number;
  readonly meetingId: string;
  readonly call: number;
  ret?: number;
  /** null: NOT_FOUND (no checkpoint yet). */
  checkpoint?: { readonly epoch: number; readonly seq: number; readonly nodeId: string; readonly w: string } | null;
  error?: string;
}

/** Coordinator.EndMeeting. */
export interface EndOp {
  readonly kind: "end";
  readonly client: number;
  readonly meetingId: string;
  readonly call: number;
  ret?: number;
  result?: "ok" | "not-found";
  error?: string;
}

export type ClientOp = RouteOp | ServeOp | CheckpointReadOp | EndOp;

export class History {
  readonly ops: ClientOp[] = [];

  add<T extends ClientOp>(op: T): T {
    this.ops.push(op);
    return op;
  }

  counts(): Record<ClientOp["kind"], number> {
    const c = { route: 0, serve: 0, checkpoint: 0, end: 0 };
    for (const op of this.ops) c[op.kind]++;
    return c;
  }
}
