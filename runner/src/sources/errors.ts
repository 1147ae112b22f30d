/** Errors of the hosting sources, inventory and component restores. */
export type HostingErrorCode =
  | "CONFIG_INVALID"
  | "SOURCE_FAILED"
  | "DUMP_FAILED"
  | "DB_UNREACHABLE"
  | "PERMISSION_DENIED"
  | "UNSAFE_DUMP"
  | "INCOMPLETE_DUMP"
  | "ROUTER_FAILED"
  | "HOST_KEY_MISMATCH"
  | "RESTORE_FAILED"
  | "UNSAFE_ENTRY";

export class HostingError extends Error {
  constructor(
    readonly code: HostingErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "HostingError";
  }
}
