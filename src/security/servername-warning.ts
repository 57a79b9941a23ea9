/**
 * grpc-js names the TLS server after the host of the address it dials, and
 * Node warns (DEP0123) when that host is an IP address, which RFC 6066
 * does not allow as a server name. The certificate's IP SANs are checked
 * all the same, so the warning asks nothing of an operator, yet every
 * process dialing members as 127.0.0.1:7001 would print it. src/cli.ts
 * calls this once; every other warning is printed as before.
 */
export function silenceIpServernameWarning(): void {
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  const filtered = (...args: unknown[]): void => {
    const [, typeOrOptions, code] = args;
    const isDep0123 = code === "DEP0123" || (typeof typeOrOptions === "object" && (typeOrOptions as { code?: unknown } | null)?.code === "DEP0123");
    if (!isDep0123) emit(...args);
  };
  process.emitWarning = filtered as typeof process.emitWarning;
}
