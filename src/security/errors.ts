/**
 * The one error of src/security/: a TLS file, tokens file or transport
 * setting that is wrong. Its name ends in ConfigError, so the CLI treats it
 * like every module's config error (exit 2, message printed as is). The
 * message names the field (as a flag and as a config key) and the rule.
 */
export class SecurityConfigError extends Error {
  readonly code = "CONFIG";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "SecurityConfigError";
  }
}
