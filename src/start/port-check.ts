/**
 * Before `convene start` spawns anything: every port it needs must be free.
 * A port another program holds is explained in the terminal, naming the
 * process it was meant for and the flag that moves it, instead of a child
 * dying with EADDRINUSE in a log file. (A program that takes a port between
 * this check and the child's start is still reported: the child's exit and
 * the last lines of its log are printed.)
 */
import { createServer } from "node:net";
import { PortInUseError } from "./errors.js";
import type { PortOwner } from "./start-config.js";

/** Binds `host:port` and lets it go; rejects with PortInUseError saying why it cannot be had. */
function probe(host: string, { port, name, flag }: PortOwner): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", (err: NodeJS.ErrnoException) => {
      const where = `port ${port} on ${host}, for ${name},`;
      switch (err.code) {
        case "EADDRINUSE":
          reject(new PortInUseError(port, `${where} is in use by another program (\`ss -ltnp 'sport = :${port}'\` shows which); stop it, or choose a free port with ${flag}`, { cause: err }));
          return;
        case "EACCES":
          reject(new PortInUseError(port, `${where} may not be opened by this user (ports below 1024 need privileges); choose another with ${flag}`, { cause: err }));
          return;
        case "EADDRNOTAVAIL":
          reject(new PortInUseError(port, `${host} is not an address of this machine, so ${where} cannot be opened`, { cause: err }));
          return;
        default:
          reject(new PortInUseError(port, `${where} cannot be opened: ${err.message}`, { cause: err }));
      }
    });
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve()));
  });
}

/** Checks each port in turn (portOwners' order). */
export async function checkPortsFree(host: string, owners: readonly PortOwner[]): Promise<void> {
  for (const owner of owners) await probe(host, owner);
}
