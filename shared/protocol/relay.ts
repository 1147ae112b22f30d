/**
 * Runner-relayed downloads (destinations without presigned URLs): the runner PUTs the archive to
 * `/api/v1/relay/:relayId` with a JWT signed by its own Ed25519 key, bound to that relay id. Only the
 * runner holds the private key, so no one else can feed bytes into a waiting download.
 */
export const RELAY_TOKEN_TYP = "cairn-relay+jwt";
export const RELAY_AUDIENCE = "cairn-relay";
/** The runner signs just before it sends; a short life limits replay of a captured header. */
export const RELAY_TOKEN_MAX_TTL_SECONDS = 300;
/** How long either side waits for the other (browser for the runner, runner for the browser). */
export const RELAY_WAIT_MS = 30_000;
