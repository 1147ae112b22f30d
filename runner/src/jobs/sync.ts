import { createHash } from "node:crypto";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { JobRejectCode } from "../../../shared/errors";
import type { CopyResult } from "../../../shared/destinations";
import type {
  JobClaims,
  JobDestination,
  JobSecrets,
  SyncJobParams,
} from "../../../shared/protocol/job-claims";
import { manifestFileName } from "../archive/manifest";
import type { Progress } from "../archive/types";
import type { RunnerConfig } from "../config";
import { JobRejection } from "../daemon/job-verifier";
import type { Destination } from "../destinations";
import { LocalDestination } from "../destinations/local";
import { localArchivePath } from "./archive-file";
import { openRemote, remoteSpec } from "./remote-destination";
import { JobFailure, type JobHandler } from "./types";

function params(claims: JobClaims): SyncJobParams {
  if (claims.job.type !== "sync") throw new JobRejection(JobRejectCode.UnsupportedJob, "not a sync job");
  return claims.job.params;
}

async function openSource(
  src: JobDestination,
  secrets: JobSecrets,
  config: RunnerConfig,
): Promise<Destination> {
  return src.kind === "local" ? new LocalDestination(config.backupDir) : openRemote(src, secrets, config);
}

/** Streams one object from `from` to `to`, hashing what passes; the writer is aborted on any failure. */
async function copyObject(
  from: Destination,
  to: Destination,
  name: string,
  signal: AbortSignal,
  onBytes?: (n: number) => void,
): Promise<{ size: number; sha256: string }> {
  const hash = createHash("sha256");
  let size = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _e, cb) {
      hash.update(chunk);
      size += chunk.length;
      onBytes?.(size);
      cb(null, chunk);
    },
  });
  const w = await to.createWriter(name, { signal });
  try {
    await pipeline(await from.createReadStream(name), meter, w.stream, { signal });
    const info = await w.commit();
    if (info.size !== size)
      throw new JobFailure(
        "INTEGRITY_MISMATCH",
        `${to.url}/${name}: stored ${info.size} bytes, sent ${size}`,
      );
  } catch (err) {
    await w.abort(err).catch(() => {});
    throw err;
  }
  return { size, sha256: hash.digest("hex") };
}

/** Reads the stored object back and hashes it: what the destination holds, not what we sent. */
async function remoteDigest(
  dest: Destination,
  name: string,
  signal: AbortSignal,
): Promise<{ size: number; sha256: string }> {
  const hash = createHash("sha256");
  let size = 0;
  const sink = new Transform({
    transform(chunk: Buffer, _e, cb) {
      hash.update(chunk);
      size += chunk.length;
      cb();
    },
  });
  await pipeline(await dest.createReadStream(name), sink, { signal });
  return { size, sha256: hash.digest("hex") };
}

/**
 * Sync an existing backup to a destination: archive, then manifest (when the source has one). The
 * source bytes must match the backup's recorded size and sha256, and the stored object is read back
 * and must match too; otherwise the copy fails (and the bad object is deleted), never completes.
 */
export function syncHandler(): JobHandler {
  return {
    validate(claims, secrets, config) {
      const p = params(claims);
      localArchivePath(config.backupDir, p.fileName);
      remoteSpec(p.target, secrets, config);
      if (p.source.kind === "remote") remoteSpec(p.source, secrets, config);
    },
    async run(ctx) {
      const p = params(ctx.claims);
      const from = await openSource(p.source, ctx.secrets, ctx.config);
      const to = await openRemote(p.target, ctx.secrets, ctx.config);
      const started = Date.now();
      // Live monitor: percent (from totalBytes), bytes/s (reporter), ETA and the object being copied.
      const report = (pr: Progress) => {
        const secs = (Date.now() - started) / 1000;
        const rate = secs > 0 ? pr.bytes / secs : 0;
        ctx.progress({
          ...pr,
          message: pr.currentFile,
          ...(rate > 0 &&
            pr.totalBytes !== undefined && { etaSeconds: Math.round((pr.totalBytes - pr.bytes) / rate) }),
        });
      };
      try {
        report({ bytes: 0, files: 0, totalBytes: p.size, phase: "upload", currentFile: p.fileName });
        const sent = await copyObject(from, to, p.fileName, ctx.signal, (n) =>
          report({ bytes: n, files: 0, totalBytes: p.size, phase: "upload", currentFile: p.fileName }),
        );
        const bad = async (msg: string): Promise<never> => {
          await to.delete(p.fileName).catch(() => {});
          throw new JobFailure("INTEGRITY_MISMATCH", msg);
        };
        if (sent.size !== p.size || sent.sha256 !== p.sha256)
          await bad(`source archive ${p.fileName} does not match the backup record (size/sha256)`);
        report({ bytes: p.size, files: 1, totalBytes: p.size, phase: "verify", currentFile: p.fileName });
        const stored = await remoteDigest(to, p.fileName, ctx.signal);
        if (stored.size !== p.size || stored.sha256 !== p.sha256)
          await bad(
            `${to.url}/${p.fileName}: stored object does not match (size ${stored.size}, expected ${p.size})`,
          );
        const mName = manifestFileName(p.fileName);
        if (await from.stat(mName)) await copyObject(from, to, mName, ctx.signal);
        // The monitor's last word is the finished copy, sent past the throttle.
        ctx.progress({
          bytes: p.size,
          files: 1,
          totalBytes: p.size,
          phase: "done",
          message: p.fileName,
          final: true,
        });
        const result: CopyResult & Record<string, unknown> = {
          destinationId: p.target.destinationId,
          status: "completed",
          objectName: p.fileName,
          size: stored.size,
          sha256: stored.sha256,
          url: to.url,
          durationMs: Date.now() - started,
        };
        return { result };
      } finally {
        await Promise.all([from.close().catch(() => {}), to.close().catch(() => {})]);
      }
    },
  };
}
