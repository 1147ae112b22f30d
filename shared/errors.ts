/** Error codes of the HTTP API (`{"error":{"code","message"}}`). */
export const ApiErrorCode = {
  BadRequest: "BAD_REQUEST",
  ValidationFailed: "VALIDATION_FAILED",
  Unauthorized: "UNAUTHORIZED",
  Forbidden: "FORBIDDEN",
  NotFound: "NOT_FOUND",
  Conflict: "CONFLICT",
  PayloadTooLarge: "PAYLOAD_TOO_LARGE",
  RateLimited: "RATE_LIMITED",
  RunnerOffline: "RUNNER_OFFLINE",
  NotImplemented: "NOT_IMPLEMENTED",
  Internal: "INTERNAL",
  /** Drive authorization callback: state unknown, already used, expired or for another destination. */
  OAuthStateInvalid: "OAUTH_STATE_INVALID",
  /** Drive authorization: the provider refused the code or returned no refresh token. */
  OAuthExchangeFailed: "OAUTH_EXCHANGE_FAILED",
  /** Runner-relayed download: the runner did not start sending in time. */
  RelayTimeout: "RELAY_TIMEOUT",
  /** Runner-relayed download: the runner's relay-upload job failed before sending (its code in `error.job`). */
  RelayFailed: "RELAY_FAILED",
} as const;
export type ApiErrorCode = (typeof ApiErrorCode)[keyof typeof ApiErrorCode];

/** Why a runner refused a job. Reported to the control plane; the job is never executed. */
export const JobRejectCode = {
  Malformed: "MALFORMED",
  BadAlgorithm: "BAD_ALGORITHM",
  UnknownKey: "UNKNOWN_KID",
  BadSignature: "BAD_SIGNATURE",
  WrongType: "WRONG_TYPE",
  WrongIssuer: "WRONG_ISSUER",
  WrongAudience: "WRONG_AUDIENCE",
  Expired: "EXPIRED",
  NotYetValid: "NOT_YET_VALID",
  Replayed: "REPLAYED",
  UnsupportedJob: "UNSUPPORTED_JOB",
  InvalidParams: "INVALID_PARAMS",
  SourceNotAllowed: "SOURCE_NOT_ALLOWED",
} as const;
export type JobRejectCode = (typeof JobRejectCode)[keyof typeof JobRejectCode];

/** Error codes of the archive engine and the runner CLI (first word of the one stderr line). */
export const ArchiveErrorCode = {
  WrongKey: "WRONG_KEY",
  Corrupt: "CORRUPT",
  Truncated: "TRUNCATED",
  UnsafeEntry: "UNSAFE_ENTRY",
  NotFound: "NOT_FOUND",
  Usage: "USAGE",
  Io: "IO_ERROR",
  Cancelled: "CANCELLED",
} as const;
export type ArchiveErrorCode = (typeof ArchiveErrorCode)[keyof typeof ArchiveErrorCode];
