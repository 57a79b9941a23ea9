/**
 * `convene certs`: makes a local CA, a certificate per member, client
 * certificates and a tokens file for a test cluster (src/security/certs.ts),
 * and prints how to start members and clients with them.
 *
 *   convene certs --out ./certs --member n1=10.0.0.1 --member n2 --member n3 --agent m1 --agent m2 --https gw=gw.example
 */
import { type Command, InvalidArgumentError, Option } from "commander";
import { intArg } from "./arguments.js";
import { UsageError } from "./errors.js";

interface CertsOptions {
  out: string;
  member?: string[];
  agent?: string[];
  https?: string[];
  days: number;
  force?: boolean;
}

/** "n1=10.0.0.1,n1.example" → { id: "n1", hosts: ["10.0.0.1", "n1.example"] } (checked later by writeCerts). */
function parseMember(value: string): { id: string; hosts: string[] } {
  const eq = value.indexOf("=");
  if (eq === 0) throw new InvalidArgumentError("it must be ID or ID=HOST[,HOST...].");
  if (eq < 0) return { id: value, hosts: [] };
  return { id: value.slice(0, eq), hosts: value.slice(eq + 1).split(",").map((h) => h.trim()).filter((h) => h !== "") };
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

export function addCertsCommand(program: Command): void {
  program
    .command("certs")
    .description("make a local CA, member and client certificates and a tokens file for a test cluster")
    .addOption(new Option("--out <dir>", "where to write them").default("./certs"))
    .option("--member <id[=host,...]>", "a member and the host names/IPs it is reached by (beyond localhost, 127.0.0.1, ::1); repeat per member (default n1, n2, n3)", collect)
    .option("--agent <node-id>", "a meeting server's node id: an agent certificate and token; repeat (default m1, m2)", collect)
    .option("--https <name[=host,...]>", "a gateway or demo server serving HTTPS (--tls-cert/--tls-key): https-<name>.crt/.key for localhost, 127.0.0.1, ::1 and the hosts given; repeat", collect)
    .addOption(new Option("--days <n>", "validity of the certificates").default(365).argParser(intArg(1, 3650)))
    .option("--force", "overwrite files that exist")
    .action(async (opts: CertsOptions) => {
      // node-forge is large: only this command loads it, not every start of a member.
      const { writeCerts } = await import("../security/certs.js");
      let result;
      try {
        result = writeCerts({
          outDir: opts.out,
          members: (opts.member ?? ["n1", "n2", "n3"]).map(parseMember),
          agents: opts.agent ?? ["m1", "m2"],
          https: (opts.https ?? []).map(parseMember),
          days: opts.days,
          force: opts.force === true,
        });
      } catch (err) {
        throw new UsageError("certs", err instanceof Error ? err.message : String(err), { cause: err });
      }
      const d = opts.out;
      const first = (opts.member ?? ["n1"]).map(parseMember)[0]!.id;
      process.stdout.write(
        `wrote ${result.files.length} files:\n${result.files.map((f) => `  ${f}`).join("\n")}\n\n` +
          "Members (same tokens file for each; add --require-client-cert for mutual TLS):\n" +
          `  convene member --id ${first} ... --cert ${d}/${first}.crt --key ${d}/${first}.key --ca ${d}/ca.crt --tokens ${d}/tokens.yaml\n` +
          "Clients:\n" +
          `  convene status --ca ${d}/ca.crt --token $(cat ${d}/operator.token)   # or CONVENE_TOKEN; --cert/--key ${d}/operator.crt/.key under mutual TLS\n` +
          `  convene gateway --ca ${d}/ca.crt --token $(cat ${d}/gateway.token) ...\n` +
          `Keep ${d}/ca.key (it signs certificates) and the .key, .token and tokens.yaml files private.\n`,
      );
    });
}
