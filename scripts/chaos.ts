/**
 * The chaos suite: real coordinator members, gateways and meeting servers on
 * this machine, seeded faults under load, then checks for lost writes and
 * violations (scripts/chaos/run.ts has the order of a run).
 *
 *   npx tsx scripts/chaos.ts --duration 60 --seed 1 [--members 5] [--plan]
 *
 * Every gRPC link uses TLS with client certificates and tokens, made for
 * the run (chaos/security.ts), as a deployment beyond loopback must.
 * Prints one line per fault, the findings, and last
 *   chaos: <faults> faults, <ops> ops, <lost> lost, <violations> violations
 * Exit code: 0 clean, 1 a loss or a violation, 2 bad flags, 3 could not start.
 */
import { silenceIpServernameWarning } from "../src/security/servername-warning.js";
import { ChaosUsageError, parseChaosArgs } from "./chaos/options.js";
import { runChaos } from "./chaos/run.js";

// The checkers dial members by IP address over TLS: Node's warning about IP server names says nothing here.
silenceIpServernameWarning();

const say = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

let code: number;
try {
  code = await runChaos(parseChaosArgs(process.argv.slice(2)), say);
} catch (err) {
  if (err instanceof ChaosUsageError) {
    process.stderr.write(`${err.message}\n`);
    code = 2;
  } else {
    process.stderr.write(`chaos: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    code = 3;
  }
}
process.exit(code);
