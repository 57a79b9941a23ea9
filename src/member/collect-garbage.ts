/**
 * A major garbage collection on request, for the moment a member knows a
 * large amount of memory just became garbage: after a snapshot replaces
 * the previous one, whose 100 MB buffer (with 100,000 meetings' checkpoints)
 * stays allocated until V8 next runs a major collection, which on a busy
 * leader can be minutes away. Measured with `npm run bench -- scale`.
 *
 * The collection is asked for concurrently ("async"): V8 marks on helper
 * threads and pauses the event loop only for its final steps.
 *
 * `gc` is exposed at run time rather than by `--expose-gc` on the command
 * line, so a member started any way (`convene member`, `convene start`,
 * a service manager) behaves the same.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

type Gc = (options: { type: "major"; execution: "async" }) => void;

let gc: Gc | undefined;

export function collectGarbageSoon(): void {
  if (!gc) {
    setFlagsFromString("--expose-gc");
    gc = runInNewContext("gc") as Gc;
  }
  gc({ type: "major", execution: "async" });
}
