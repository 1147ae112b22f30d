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
import type { Destination, ObjectWriter } from "../destinations";
import { LocalDestination } from "../destinations/local";
import { resumeTokenBytes } from "../destinations/resume-tokens";
import { SyncResumeStore, type SavedSync } from "./sync-resume-store";
import { localArchivePath } from "./archive-file";
import { openRemote, remoteSpec } from "./remote-destination";
import { JobFailure, type JobHandler } from "./types";
import { Sha256Meter } from "../util/sha256-meter";

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
  const meter = new Sha256Meter({ onBytes });
  const w = await to.createWriter(name, { signal });
  try {
    await pipeline(await from.createReadStream(name), meter, w.stream, { signal });
    const info = await w.commit();
    if (info.size !== meter.size)
      throw new JobFailure(
        "INTEGRITY_MISMATCH",
        `${to.url}/${name}: stored ${info.size} bytes, sent ${meter.size}`,
      );
  } catch (err) {
    await w.abort(err).catch(() => {});
    throw err;
  }
  return { size: meter.size, sha256: meter.digest() };
}

/** Pause is a cancel whose reason says PAUSED (job.cancel with mode "pause"): progress is kept. */
function pausedBy(signal: AbortSignal): boolean {
  return signal.aborted && (signal.reason as { code?: unknown } | undefined)?.code === "PAUSED";
}

/** Failures worth keeping the upload for: the next attempt (retry) may well succeed and resume. */
function transient(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === "CONNECTION_FAILED";
}

/** The held upload could not be adopted (see copyAttempt); the attempt is made again from zero. */
class ResumeRefused extends Error {
  constructor(cause: unknown) {
    super(`held upload not adopted: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
}

interface ResumeState {
  store: SyncResumeStore;
  backupId: string;
  destinationId: string;
  saved?: SavedSync;
  /** The backup's recorded size: sizes Drive's session and S3's parts up front. */
  size: number;
}

/**
 * copyResumable, and once more from zero when a resumed attempt fails its integrity check (held bytes
 * that were not what we sent, or a source that changed since): never a corrupt object, never a failure
 * that a plain upload would have avoided.
 */
async function copyResumable(
  from: Destination,
  to: Destination,
  name: string,
  signal: AbortSignal,
  resume: ResumeState,
  onAcked?: (total: number, sent: number) => void,
): Promise<{ size: number; sha256: string; skipped: number; restarted: boolean }> {
  try {
    return { ...(await copyAttempt(from, to, name, signal, resume, onAcked)), restarted: false };
  } catch (err) {
    const refused =
      err instanceof ResumeRefused || (err as { code?: unknown } | null)?.code === "INTEGRITY_MISMATCH";
    if (!resume.saved || !refused || signal.aborted) throw err;
    const again = await copyAttempt(from, to, name, signal, { ...resume, saved: undefined }, onAcked);
    return { ...again, restarted: true };
  }
}

/**
 * copyObject for the archive itself, resumable: continues `saved` when given. On pause or a transient
 * failure, a resumable writer is suspended and its token saved for the next attempt; on cancel or any
 * other failure the upload (and an earlier suspended one) is aborted and the saved state dropped.
 * `onAcked` gets the running total of bytes the destination has acknowledged (held ones included),
 * not of bytes read from the source: a stalled upload must not look finished; and of those, the ones
 * this attempt sent (for the rate).
 */
async function copyAttempt(
  from: Destination,
  to: Destination,
  name: string,
  signal: AbortSignal,
  resume: ResumeState,
  onAcked?: (total: number, sent: number) => void,
): Promise<{ size: number; sha256: string; skipped: number }> {
  const { store, backupId, destinationId, saved } = resume;
  // Bytes read from the source: what the stored size and the record are checked against.
  const meter = new Sha256Meter();
  let acked = 0;
  let skipped = () => 0;
  // The writer only sees real cancels: a pause must not abort the multipart upload.
  const cancel = new AbortController();
  let w: ObjectWriter;
  try {
    w = await to.createWriter(name, {
      signal: cancel.signal,
      resume: saved?.token,
      keepOnFailure: true,
      sizeHint: resume.size,
      onAcked: (n) => {
        acked += n;
        onAcked?.(acked, acked - skipped());
      },
    });
  } catch (err) {
    // A held upload refused for a reason other than a passing network fault (a session the server
    // no longer accepts, a temp file that cannot be read) would fail every later attempt the same
    // way: drop it, and let copyResumable start from zero.
    if (saved && !transient(err) && !signal.aborted) {
      await to.discardSuspended?.(saved.token).catch(() => {});
      await store.remove(backupId, destinationId);
      throw new ResumeRefused(err);
    }
    throw err;
  }
  // Writers count what they skipped (held from an earlier attempt) before reporting it acknowledged.
  skipped = () => w.skippedBytes ?? 0;
  // Pause also stops a commit that is waiting on parts in flight (suspend cuts them).
  const onAbort = () => {
    if (!pausedBy(signal)) cancel.abort(signal.reason);
    else if (w.suspend) void w.suspend().catch(() => {});
    else void w.abort(signal.reason).catch(() => {});
  };
  signal.addEventListener("abort", onAbort, { once: true });
  if (signal.aborted) onAbort();
  try {
    await pipeline(await from.createReadStream(name), meter, w.stream, { signal });
    const info = await w.commit();
    await store.remove(backupId, destinationId);
    if (info.size !== meter.size)
      throw new JobFailure(
        "INTEGRITY_MISMATCH",
        `${to.url}/${name}: stored ${info.size} bytes, sent ${meter.size}`,
      );
    return { size: meter.size, sha256: meter.digest(), skipped: w.skippedBytes ?? 0 };
  } catch (err) {
    if (w.suspend && (pausedBy(signal) || transient(err))) {
      const token = await w.suspend({ finishInflight: !pausedBy(signal) });
      if (token !== undefined)
        await store.save(backupId, destinationId, {
          fileName: name,
          url: to.url,
          bytesDone: resumeTokenBytes(token),
          token,
        });
      else await store.remove(backupId, destinationId);
    } else {
      await w.abort(err).catch(() => {});
      // Cancelled before the earlier upload was even adopted: it must not be left behind either.
      if (saved) await to.discardSuspended?.(saved.token).catch(() => {});
      await store.remove(backupId, destinationId);
    }
    throw err;
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

/** Reads the stored object back and hashes it: what the destination holds, not what we sent. */
async function remoteDigest(
  dest: Destination,
  name: string,
  signal: AbortSignal,
): Promise<{ size: number; sha256: string }> {
  const sink = new Sha256Meter({ discard: true });
  await pipeline(await dest.createReadStream(name), sink, { signal });
  return { size: sink.size, sha256: sink.digest() };
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
      const store = new SyncResumeStore(ctx.config.stateDir);
      const backupId = p.binding.backupId;
      const destinationId = p.target.destinationId;
      let saved = await store.load(backupId, destinationId);
      // Retry from zero, or state for another object/place: abort that upload so nothing is orphaned.
      if (saved && !p.discard && (p.restart || saved.fileName !== p.fileName || saved.url !== to.url)) {
        await to.discardSuspended?.(saved.token);
        await store.remove(backupId, destinationId);
        saved = undefined;
      }
      if (p.discard) {
        try {
          if (saved) await to.discardSuspended?.(saved.token);
          await store.remove(backupId, destinationId);
          return { result: { destinationId, discarded: saved !== undefined } };
        } finally {
          await Promise.all([from.close().catch(() => {}), to.close().catch(() => {})]);
        }
      }
      // Live monitor: percent (from totalBytes), bytes/s (reporter), ETA and the object being copied.
      // `bytes` are the ones the destination acknowledged; 100% only once commit checked the object.
      const report = (pr: Progress & { rateBytes?: number }, committed = false) => {
        const secs = (Date.now() - started) / 1000;
        const rate = secs > 0 ? (pr.rateBytes ?? pr.bytes) / secs : 0;
        ctx.progress({
          ...pr,
          message: pr.currentFile,
          ...(pr.totalBytes && {
            percent: Math.min(committed ? 100 : 99.9, Math.floor((pr.bytes / pr.totalBytes) * 1000) / 10),
          }),
          ...(rate > 0 &&
            pr.totalBytes !== undefined && { etaSeconds: Math.round((pr.totalBytes - pr.bytes) / rate) }),
        });
      };
      try {
        report({ bytes: 0, files: 0, totalBytes: p.size, phase: "upload", currentFile: p.fileName });
        const sent = await copyResumable(
          from,
          to,
          p.fileName,
          ctx.signal,
          { store, backupId, destinationId, saved, size: p.size },
          (n, sentBytes) =>
            report({
              bytes: n,
              rateBytes: sentBytes,
              files: 0,
              totalBytes: p.size,
              phase: "upload",
              currentFile: p.fileName,
            }),
        );
        if (sent.skipped > 0)
          ctx.log.info("sync resumed", { jobId: ctx.jobId, destinationId, skippedBytes: sent.skipped });
        if (sent.restarted)
          ctx.log.warn(
            "sync resume refused: the held upload was not adopted or did not check out; uploaded from zero",
            {
              jobId: ctx.jobId,
              destinationId,
            },
          );
        const bad = async (msg: string): Promise<never> => {
          await to.delete(p.fileName).catch(() => {});
          throw new JobFailure("INTEGRITY_MISMATCH", msg);
        };
        if (sent.size !== p.size || sent.sha256 !== p.sha256)
          await bad(`source archive ${p.fileName} does not match the backup record (size/sha256)`);
        report(
          { bytes: p.size, files: 1, totalBytes: p.size, phase: "verify", currentFile: p.fileName },
          true,
        );
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
          /** Bytes an earlier paused or failed attempt had uploaded and that were not sent again. */
          resumedBytes: sent.skipped,
        };
        return { result };
      } finally {
        await Promise.all([from.close().catch(() => {}), to.close().catch(() => {})]);
      }
    },
  };
}
