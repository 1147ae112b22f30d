import { randomUUID } from "node:crypto";
import { Readable, Transform } from "node:stream";
import { importJWK, SignJWT, type JWK } from "jose";
import { JobRejectCode } from "../../../shared/errors";
import type {
  JobClaims,
  JobDestination,
  JobSecrets,
  RelayUploadJobParams,
} from "../../../shared/protocol/job-claims";
import { RELAY_AUDIENCE, RELAY_TOKEN_TYP } from "../../../shared/protocol/relay";
import type { RunnerConfig } from "../config";
import { JobRejection } from "../daemon/job-verifier";
import type { Destination } from "../destinations";
import { LocalDestination } from "../destinations/local";
import { localArchivePath } from "./archive-file";
import { openRemote, remoteSpec } from "./remote-destination";
import { JobFailure, type JobHandler } from "./types";

/** The token lives just long enough to start the PUT. */
const RELAY_TOKEN_TTL_SECONDS = 120;

function params(claims: JobClaims): RelayUploadJobParams {
  if (claims.job.type !== "relay-upload")
    throw new JobRejection(JobRejectCode.UnsupportedJob, "not a relay-upload job");
  return claims.job.params;
}

/** Proves to the control plane that this runner (and only it) feeds relay `relayId`. */
export async function createRelayToken(
  runnerId: string,
  signingPrivateJwk: JWK,
  relayId: string,
  nowSeconds = Math.floor(Date.now() / 1000),
): Promise<string> {
  return new SignJWT({ relayId })
    .setProtectedHeader({ alg: "EdDSA", typ: RELAY_TOKEN_TYP })
    .setIssuer(runnerId)
    .setSubject(runnerId)
    .setAudience(RELAY_AUDIENCE)
    .setIssuedAt(nowSeconds)
    .setExpirationTime(nowSeconds + RELAY_TOKEN_TTL_SECONDS)
    .setJti(randomUUID())
    .sign(await importJWK(signingPrivateJwk, "EdDSA"));
}

export function relayUrl(controlPlaneUrl: string, relayId: string): string {
  return `${controlPlaneUrl.replace(/\/+$/, "")}/api/v1/relay/${encodeURIComponent(relayId)}`;
}

function openSource(
  src: JobDestination,
  secrets: JobSecrets,
  config: RunnerConfig,
): Promise<Destination> | Destination {
  return src.kind === "local" ? new LocalDestination(config.backupDir) : openRemote(src, secrets, config);
}

/**
 * Runner-relayed download: stream one archive (local backup dir or a remote copy) to the control plane's
 * relay with a streaming PUT. Nothing is staged; a short or refused upload fails the job.
 */
export function relayUploadHandler(): JobHandler {
  return {
    validate(claims, secrets, config) {
      const p = params(claims);
      localArchivePath(config.backupDir, p.fileName);
      if (p.source.kind === "remote") remoteSpec(p.source, secrets, config);
    },
    async run(ctx) {
      const p = params(ctx.claims);
      const from = await openSource(p.source, ctx.secrets, ctx.config);
      try {
        const info = await from.stat(p.fileName);
        if (!info) throw new JobFailure("NOT_FOUND", `archive ${p.fileName} not found at the source`);
        if (info.size !== p.size)
          throw new JobFailure(
            "CORRUPT",
            `archive ${p.fileName} is ${info.size} bytes, the backup record says ${p.size}`,
          );
        let bytes = 0;
        const meter = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            bytes += chunk.length;
            ctx.progress({ bytes, totalBytes: p.size, files: 0, phase: "relay" });
            cb(null, chunk);
          },
        });
        const body = (await from.createReadStream(p.fileName)).pipe(meter);
        const token = await createRelayToken(
          ctx.config.runnerId,
          ctx.config.keys.signing.privateJwk as JWK,
          p.relayId,
        );
        let res: Response;
        try {
          res = await fetch(relayUrl(ctx.config.controlPlaneUrl, p.relayId), {
            method: "PUT",
            headers: { authorization: `Bearer ${token}`, "content-type": "application/octet-stream" },
            body: Readable.toWeb(body) as ReadableStream,
            duplex: "half",
            signal: ctx.signal,
          } as RequestInit);
        } catch (e) {
          throw new JobFailure("RELAY_FAILED", `relay upload failed: ${(e as Error).message}`, { cause: e });
        }
        const text = await res.text();
        if (!res.ok)
          throw new JobFailure(
            "RELAY_FAILED",
            `control plane refused the relay upload: ${res.status} ${text.slice(0, 300)}`,
          );
        return { result: { relayId: p.relayId, bytes } };
      } finally {
        await from.close().catch(() => {});
      }
    },
  };
}
