/** Wire protocol version spoken over the runner WebSocket. Bump on any incompatible change. */
export const PROTOCOL_VERSION = 1;

/** JOSE `typ` header values; a token of one kind must never be accepted as another. */
export const JOB_TOKEN_TYP = "cairn-job+jwt";
export const RUNNER_CONNECT_TOKEN_TYP = "cairn-runner+jwt";

/** Issuer of job tokens, and audience of runner connect tokens. */
export const CONTROL_PLANE_ISSUER = "cairn-control-plane";
export const RUNNER_CONNECT_AUDIENCE = "cairn-control-plane:connect";

/** Connect tokens are single-use and short-lived. */
export const RUNNER_CONNECT_TOKEN_MAX_TTL_SECONDS = 120;

/** Largest WebSocket message either side accepts; bigger ones close the socket with 1009. */
export const MAX_MESSAGE_BYTES = 256 * 1024;

/**
 * Heartbeats are exact strings so the Durable Object can answer them with
 * `setWebSocketAutoResponse` without waking from hibernation.
 */
export const HEARTBEAT_PING = '{"type":"ping"}';
export const HEARTBEAT_PONG = '{"type":"pong"}';

/** WebSocket close codes used by the control plane. */
export const CloseCode = {
  Normal: 1000,
  PolicyViolation: 1008, // malformed message
  MessageTooBig: 1009,
  Unauthorized: 4001, // bad/expired/replayed connect token, or runner revoked
  Replaced: 4002, // a newer connection for the same runner took over
} as const;
