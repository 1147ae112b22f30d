import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, unlink } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { JobResult } from "../../../shared/protocol/runner-messages";
import { JOB_TOKEN_TTL_SECONDS } from "../../../shared/jobs";
import { writeFileAtomic } from "../util/atomic-write";

/**
 * The runner's memory of every job id it has accepted: replay cache, at-most-once guard and
 * result outbox in one. One small JSON file per job under `<stateDir>/journal/`, written atomically
 * and fsynced before the runner says `job.accepted` or sends a result, so it survives a crash or restart.
 */

export const JournalState = z.enum(["accepted", "running", "finished"]);
export type JournalState = z.infer<typeof JournalState>;

export const JournalEntry = z.object({
  jobId: z.string(),
  /** sha256 of the job's identity (see jobFingerprint); a different payload under a known jti is a replay. */
  fingerprint: z.string(),
  jobType: z.string(),
  state: JournalState,
  acceptedAt: z.number(),
  updatedAt: z.number(),
  /** Latest `exp` (seconds) of any token seen for this jti: no copy of it is valid after this + tolerance. */
  maxExp: z.number(),
  result: JobResult.optional(),
  ackedAt: z.number().optional(),
});
export type JournalEntry = z.infer<typeof JournalEntry>;

export type JobResultMessage = z.infer<typeof JobResult>;

/**
 * What identifies a job across deliveries. Every delivery is freshly signed (new iat/exp) and its
 * JWE secrets freshly encrypted, so those are left out; everything that decides what runs is in.
 */
export function jobFingerprint(claims: {
  iss: string;
  aud: string;
  sub: string;
  jti: string;
  job: unknown;
}): string {
  const canonical = canonicalJson({
    iss: claims.iss,
    aud: claims.aud,
    sub: claims.sub,
    jti: claims.jti,
    job: claims.job,
  });
  return createHash("sha256").update(canonical).digest("hex");
}

function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v && typeof v === "object") {
    const keys = Object.keys(v).sort();
    return `{${keys
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v);
}

/** Clock tolerance on job tokens (seconds), as in the verifier. */
export const CLOCK_TOLERANCE_SECONDS = 60;
/** Acked entries are kept this long past the last moment any token for them could still verify. */
export const PRUNE_MARGIN_SECONDS = 600;

export class JournalError extends Error {
  readonly code = "JOURNAL_IO";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "JournalError";
  }
}

export type LookupResult =
  { kind: "new" } | { kind: "same"; entry: JournalEntry } | { kind: "different"; entry: JournalEntry };

const SAFE_ID = /^[A-Za-z0-9_-]{1,64}$/;

export class Journal {
  private readonly entries = new Map<string, JournalEntry>();
  private readonly dir: string;
  private constructor(
    stateDir: string,
    private readonly now: () => number,
  ) {
    this.dir = path.join(stateDir, "journal");
  }

  /**
   * Loads every entry. Jobs that were accepted or running when the previous process died are
   * finished as FAILED/INTERRUPTED: the runner executes a job at most once, so it never restarts one.
   */
  static async open(
    stateDir: string,
    opts: { now?: () => number } = {},
  ): Promise<{ journal: Journal; interrupted: string[] }> {
    const j = new Journal(stateDir, opts.now ?? Date.now);
    await mkdir(j.dir, { recursive: true, mode: 0o700 });
    const interrupted: string[] = [];
    for (const name of await readdir(j.dir)) {
      if (!name.endsWith(".json") || name.startsWith(".")) continue;
      const file = path.join(j.dir, name);
      let entry: JournalEntry;
      try {
        entry = JournalEntry.parse(JSON.parse(await readFile(file, "utf8")));
      } catch (err) {
        // An unreadable entry would otherwise let its jti run again: refuse to start instead.
        throw new JournalError(`${file}: unreadable journal entry; move it away after checking it`, {
          cause: err,
        });
      }
      j.entries.set(entry.jobId, entry);
      if (entry.state !== "finished") {
        interrupted.push(entry.jobId);
        await j.finish(entry.jobId, {
          type: "job.result",
          jobId: entry.jobId,
          status: "FAILED",
          error: {
            code: "INTERRUPTED",
            message: "the runner stopped while this job was running; it is not re-run",
          },
        });
      }
    }
    return { journal: j, interrupted };
  }

  lookup(jobId: string, fingerprint: string): LookupResult {
    const entry = this.entries.get(jobId);
    if (!entry) return { kind: "new" };
    return entry.fingerprint === fingerprint ? { kind: "same", entry } : { kind: "different", entry };
  }

  get(jobId: string): JournalEntry | undefined {
    return this.entries.get(jobId);
  }

  /** Durably records the job before the runner acknowledges or starts it. */
  async accept(jobId: string, fingerprint: string, jobType: string, exp: number): Promise<JournalEntry> {
    if (this.entries.has(jobId)) throw new JournalError(`job ${jobId} is already in the journal`);
    const t = this.now();
    const entry: JournalEntry = {
      jobId,
      fingerprint,
      jobType,
      state: "accepted",
      acceptedAt: t,
      updatedAt: t,
      maxExp: exp,
    };
    await this.persist(entry);
    return entry;
  }

  async noteRedelivery(jobId: string, exp: number): Promise<void> {
    const e = this.entries.get(jobId);
    if (!e || exp <= e.maxExp) return;
    await this.persist({ ...e, maxExp: exp });
  }

  async markRunning(jobId: string): Promise<void> {
    const e = this.require(jobId);
    if (e.state !== "accepted") return;
    await this.persist({ ...e, state: "running", updatedAt: this.now() });
  }

  async finish(jobId: string, result: JobResultMessage): Promise<JournalEntry> {
    const e = this.require(jobId);
    if (e.state === "finished") return e; // first result wins: a job has exactly one outcome
    const next: JournalEntry = { ...e, state: "finished", result, updatedAt: this.now() };
    await this.persist(next);
    return next;
  }

  /** The control plane recorded the result; it leaves the outbox. Unknown ids are ignored. */
  async ack(jobId: string): Promise<boolean> {
    const e = this.entries.get(jobId);
    if (!e || e.state !== "finished" || e.ackedAt !== undefined) return false;
    await this.persist({ ...e, ackedAt: this.now() });
    return true;
  }

  /** Finished results the control plane has not acknowledged yet, oldest first. */
  outbox(): JobResultMessage[] {
    return [...this.entries.values()]
      .filter((e) => e.state === "finished" && e.ackedAt === undefined && e.result)
      .sort((a, b) => a.updatedAt - b.updatedAt)
      .map((e) => e.result!);
  }

  activeJobIds(): string[] {
    return [...this.entries.values()].filter((e) => e.state !== "finished").map((e) => e.jobId);
  }

  /**
   * Drops acked entries once no token carrying their jti can verify any more (its exp plus clock
   * tolerance, and a full token lifetime after the ack) plus a margin. Unacked entries are kept forever.
   */
  async prune(): Promise<number> {
    const nowS = this.now() / 1000;
    let removed = 0;
    for (const e of [...this.entries.values()]) {
      if (e.ackedAt === undefined) continue;
      const validUntil =
        Math.max(e.maxExp, e.ackedAt / 1000 + JOB_TOKEN_TTL_SECONDS) + CLOCK_TOLERANCE_SECONDS;
      if (nowS < validUntil + PRUNE_MARGIN_SECONDS) continue;
      await unlink(this.file(e.jobId)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== "ENOENT") throw err;
      });
      this.entries.delete(e.jobId);
      removed++;
    }
    return removed;
  }

  size(): number {
    return this.entries.size;
  }

  private require(jobId: string): JournalEntry {
    const e = this.entries.get(jobId);
    if (!e) throw new JournalError(`job ${jobId} is not in the journal`);
    return e;
  }

  private file(jobId: string): string {
    if (!SAFE_ID.test(jobId)) throw new JournalError(`unsafe job id ${JSON.stringify(jobId)}`);
    return path.join(this.dir, `${jobId}.json`);
  }

  private async persist(entry: JournalEntry): Promise<void> {
    try {
      await writeFileAtomic(this.file(entry.jobId), JSON.stringify(entry) + "\n", 0o600);
    } catch (err) {
      if (err instanceof JournalError) throw err;
      throw new JournalError(`cannot write journal entry for ${entry.jobId}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    this.entries.set(entry.jobId, entry);
  }
}
