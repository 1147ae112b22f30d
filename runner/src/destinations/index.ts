/**
 * Opening a destination from its spec or URL. The CLI and the job executors go through here; every
 * destination implements ./types and passes tests/destinations/conformance.ts.
 */
import { FtpDestination } from "./ftp";
import { openGcs } from "./gcs";
import { GdriveDestination } from "./gdrive";
import { LocalDestination } from "./local";
import { S3Destination } from "./s3";
import { SftpDestination } from "./sftp";
import type { Destination } from "./types";
import { parseDestinationUrl, type DestinationOptions, type DestinationSpec } from "./url";

export {
  DestinationError,
  type Destination,
  type DestinationErrorCode,
  type ObjectInfo,
  type ObjectWriter,
} from "./types";
export {
  parseDestinationUrl,
  redactUrl,
  specUrl,
  type DestinationOptions,
  type DestinationSpec,
} from "./url";
export { buildAuthorizationUrl, exchangeAuthorizationCode, DRIVE_SCOPE } from "./gdrive-oauth";

export function openDestination(spec: DestinationSpec): Destination {
  switch (spec.type) {
    case "file":
      return new LocalDestination(spec.path);
    case "s3":
      return new S3Destination(spec);
    case "gcs":
      return openGcs(spec);
    case "sftp":
      return new SftpDestination(spec);
    case "ftp":
      return new FtpDestination(spec);
    case "gdrive":
      return new GdriveDestination(spec);
  }
}

/** `--dest URL` plus its flags → an open destination (secrets from files/environment, never the URL). */
export function openDestinationUrl(
  url: string,
  opts: DestinationOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): Destination {
  return openDestination(parseDestinationUrl(url, opts, env));
}
