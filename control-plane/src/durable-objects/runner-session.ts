import { DurableObject } from "cloudflare:workers";
import { DEFAULT_JOB_LEASE_MS, isTerminalJobState, type JobState } from "../../../shared/jobs";
import type { JobSpec } from "../../../shared/protocol/job-claims";
import { RunnerMessage } from "../../../shared/protocol/runner-messages";
import type { ServerMessage } from "../../../shared/protocol/server-messages";
import {
  CloseCode,
  HEARTBEAT_PING,
  HEARTBEAT_PONG,
  MAX_MESSAGE_BYTES,
  PROTOCOL_VERSION,
} from "../../../shared/protocol/version";
import { signJobToken } from "../crypto/job-token";
import type { Env } from "../env";
import {
  finishJob,
  markJobRunning,
  recordConnect,
  moveJobState,
  setRunnerPresence,
  writeProgress,
} from "./job-records";
import { replaceRunnerDomains } from "../lib/runner-domains";

/** What the Worker hands to a runner's session when a job is created. */
export interface LedgerJobInput {
  jobId: string;
  tenantId: string;
  runnerId: string;
  type: JobSpec["type"];
  spec: JobSpec;
  /** Compact JWE to the runner: raw secrets never reach the ledger. */
  secrets: string | null;
  backupId: string | null;
}

interface LedgerRow extends Record<string, SqlStorageValue> {
  id: string;
  tenant_id: string;
  runner_id: string;
  type: string;
  state: string;
  spec: string;
  secrets: string | null;
  backup_id: string | null;
  lease_until: number | null;
  progress: string | null;
  created_at: number;
}

interface SocketAttachment {
  runnerId: string;
  tenantId: string;
  connectedAt: number;
  helloAt: number | null;
}

const DEFAULT_HEARTBEAT_MS = 20_000;
/** At most one D1 progress write per job per this interval; the DO ledger always has the latest. */
export const PROGRESS_D1_INTERVAL_MS = 2_000;
const ACTIVE = "('DELIVERED','RUNNING')";

/**
 * One per runner (idFromName(runnerId)): owns the runner's socket, its job ledger (SQLite storage),
 * delivery and acks, and job leases. Hibernatable: heartbeats are answered by the runtime without waking.
 */
export class RunnerSession extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private readonly lastProgressWrite = new Map<string, number>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    // One exec for the whole ledger schema: a fresh runner's first connect pays for one statement batch.
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS jobs (
        id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, runner_id TEXT NOT NULL, type TEXT NOT NULL,
        state TEXT NOT NULL, spec TEXT NOT NULL, secrets TEXT, backup_id TEXT, lease_until INTEGER,
        progress TEXT, created_at INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS jobs_state_idx ON jobs(state, created_at);
      CREATE TABLE IF NOT EXISTS seen_jti (jti TEXT PRIMARY KEY, exp INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);`);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(HEARTBEAT_PING, HEARTBEAT_PONG));
  }

  private get leaseMs(): number {
    return Number(this.env.JOB_LEASE_MS) || DEFAULT_JOB_LEASE_MS;
  }

  private get heartbeatMs(): number {
    return Number(this.env.HEARTBEAT_INTERVAL_MS) || DEFAULT_HEARTBEAT_MS;
  }

  private isRevoked(): boolean {
    return this.sql.exec("SELECT 1 FROM meta WHERE key = 'revoked'").toArray().length > 0;
  }

  private openSockets(): WebSocket[] {
    return this.ctx.getWebSockets().filter((ws) => ws.readyState === WebSocket.OPEN);
  }

  // ---- connection -------------------------------------------------------------------------

  /** Only reached through the Worker's /connect route, which has verified the connect token. */
  override async fetch(request: Request): Promise<Response> {
    try {
      if (request.headers.get("upgrade")?.toLowerCase() !== "websocket")
        return new Response("expected websocket", { status: 426 });
      const runnerId = request.headers.get("x-cairn-runner-id");
      const tenantId = request.headers.get("x-cairn-tenant-id");
      const jti = request.headers.get("x-cairn-connect-jti");
      const exp = Number(request.headers.get("x-cairn-connect-exp"));
      if (!runnerId || !tenantId || !jti || !Number.isFinite(exp))
        return new Response("bad request", { status: 400 });
      if (this.isRevoked()) return new Response("revoked", { status: 403 });
      // Connect tokens are single use: the jti is remembered until the token would have expired anyway.
      const nowSec = Math.floor(Date.now() / 1000);
      this.sql.exec("DELETE FROM seen_jti WHERE exp < ?", nowSec - 120);
      if (this.sql.exec("SELECT 1 FROM seen_jti WHERE jti = ?", jti).toArray().length > 0) {
        return new Response("replayed connect token", { status: 409 });
      }
      this.sql.exec("INSERT INTO seen_jti (jti, exp) VALUES (?, ?)", jti, exp);

      const pair = new WebSocketPair();
      const server = pair[1];
      const older = this.ctx.getWebSockets();
      this.ctx.acceptWebSocket(server);
      const attachment: SocketAttachment = { runnerId, tenantId, connectedAt: Date.now(), helloAt: null };
      server.serializeAttachment(attachment);
      for (const ws of older) {
        try {
          ws.close(CloseCode.Replaced, "replaced by a newer connection");
        } catch {
          // already closing
        }
      }
      const ip = request.headers.get("cf-connecting-ip");
      this.ctx.waitUntil(
        recordConnect(this.env, { runnerId, tenantId, ip }).catch((e) => this.log("fetch", e)),
      );
      return new Response(null, { status: 101, webSocket: pair[0] });
    } catch (e) {
      this.log("fetch", e);
      return new Response("internal error", { status: 500 });
    }
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    try {
      // A replaced or revoked socket is closing: what it still says is not acted on (the runner's outbox resends).
      if (ws.readyState !== WebSocket.OPEN) return;
      const size = typeof message === "string" ? byteLength(message) : message.byteLength;
      if (size > MAX_MESSAGE_BYTES) return closeQuietly(ws, CloseCode.MessageTooBig, "message too big");
      if (typeof message !== "string")
        return closeQuietly(ws, CloseCode.PolicyViolation, "binary messages are not accepted");
      let raw: unknown;
      try {
        raw = JSON.parse(message);
      } catch {
        return closeQuietly(ws, CloseCode.PolicyViolation, "malformed message");
      }
      const parsed = RunnerMessage.safeParse(raw);
      if (!parsed.success) return closeQuietly(ws, CloseCode.PolicyViolation, "malformed message");
      const msg = parsed.data;
      const now = Date.now();
      // Any message is a sign of life: it renews the leases of every job this runner holds.
      this.sql.exec(`UPDATE jobs SET lease_until = ? WHERE state IN ${ACTIVE}`, now + this.leaseMs);
      switch (msg.type) {
        case "hello":
          return await this.onHello(ws, msg.activeJobIds);
        case "job.accepted":
          return await this.onAccepted(msg.jobId);
        case "job.rejected":
          return await this.onRejected(msg.jobId, msg.code, msg.reason);
        case "job.progress":
          return await this.onProgress(msg);
        case "job.result":
          return await this.onResult(ws, msg);
        case "inventory":
          return await this.onInventory(ws, msg);
      }
    } catch (e) {
      this.log("webSocketMessage", e);
    }
  }

  override async webSocketClose(ws: WebSocket, _code: number, _reason: string): Promise<void> {
    try {
      closeQuietly(ws, 1000, "closed");
      await this.onSocketGone(ws);
    } catch (e) {
      this.log("webSocketClose", e);
    }
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    try {
      this.log("webSocketError", error);
      await this.onSocketGone(ws);
    } catch (e) {
      this.log("webSocketError", e);
    }
  }

  private async onSocketGone(gone: WebSocket): Promise<void> {
    if (this.openSockets().some((ws) => ws !== gone)) return; // replaced: the newer socket is live
    // Delivered but never accepted: deliver again on the next connect instead of letting the lease expire.
    const reverted = this.sql
      .exec<{ id: string }>(
        "UPDATE jobs SET state = 'PENDING', lease_until = NULL WHERE state = 'DELIVERED' RETURNING id",
      )
      .toArray();
    const att = gone.deserializeAttachment() as SocketAttachment | null;
    if (att) await setRunnerPresence(this.env, att.runnerId, false);
    for (const r of reverted) await moveJobState(this.env, r.id, "DELIVERED", "PENDING");
  }

  // ---- messages ---------------------------------------------------------------------------

  private async onHello(ws: WebSocket, activeJobIds: string[]): Promise<void> {
    const att = ws.deserializeAttachment() as SocketAttachment;
    const now = Date.now();
    ws.serializeAttachment({ ...att, helloAt: now } satisfies SocketAttachment);
    for (const id of activeJobIds) {
      this.sql.exec(
        "UPDATE jobs SET lease_until = ? WHERE id = ? AND state = 'RUNNING'",
        now + this.leaseMs,
        id,
      );
    }
    this.send(ws, {
      type: "welcome",
      protocol: PROTOCOL_VERSION,
      runnerId: att.runnerId,
      serverTime: now,
      heartbeatIntervalMs: this.heartbeatMs,
      leaseMs: this.leaseMs,
    });
    const due = this.sql
      .exec<LedgerRow>("SELECT * FROM jobs WHERE state IN ('PENDING','DELIVERED') ORDER BY created_at")
      .toArray();
    for (const row of due) await this.deliver(ws, row);
  }

  private async onAccepted(jobId: string): Promise<void> {
    const row = this.job(jobId);
    if (!row || !["PENDING", "DELIVERED"].includes(row.state)) return; // redelivery ack or unknown: nothing to do
    this.sql.exec(
      "UPDATE jobs SET state = 'RUNNING', lease_until = ? WHERE id = ?",
      Date.now() + this.leaseMs,
      jobId,
    );
    await this.ensureAlarm(Date.now() + this.leaseMs);
    await markJobRunning(this.env, jobId, row.backup_id);
  }

  private async onRejected(jobId: string | null, code: string, reason: string): Promise<void> {
    if (!jobId) return this.log("onRejected", new Error(`unreadable job rejected: ${code} ${reason}`));
    const row = this.job(jobId);
    if (!row || isTerminal(row.state)) return;
    this.sql.exec("UPDATE jobs SET state = 'FAILED', lease_until = NULL, secrets = NULL WHERE id = ?", jobId);
    await finishJob(this.env, {
      ...owner(row, "runner"),
      jobId,
      backupId: row.backup_id,
      state: "FAILED",
      error: { code, message: reason || `job rejected by runner: ${code}` },
    });
  }

  private async onProgress(msg: Extract<RunnerMessage, { type: "job.progress" }>): Promise<void> {
    const row = this.job(msg.jobId);
    if (!row || isTerminal(row.state)) return;
    const progress = {
      bytes: msg.bytes,
      files: msg.files,
      rate: msg.rate,
      ...(msg.totalBytes !== undefined && { totalBytes: msg.totalBytes }),
      ...(msg.percent !== undefined && { percent: msg.percent }),
      ...(msg.phase !== undefined && { phase: msg.phase }),
      ...(msg.message !== undefined && { message: msg.message }),
      ...(msg.copies !== undefined && { copies: msg.copies }),
      ...(msg.etaSeconds !== undefined && { etaSeconds: msg.etaSeconds }),
      ...(msg.domainsText !== undefined && { domainsText: msg.domainsText }),
      ...(msg.warnings !== undefined && { warnings: msg.warnings }),
      ...(msg.errors !== undefined && { errors: msg.errors }),
    };
    this.sql.exec("UPDATE jobs SET progress = ? WHERE id = ?", JSON.stringify(progress), msg.jobId);
    const now = Date.now();
    const last = this.lastProgressWrite.get(msg.jobId) ?? 0;
    if (now - last >= PROGRESS_D1_INTERVAL_MS) {
      this.lastProgressWrite.set(msg.jobId, now);
      if (row.state !== "RUNNING") {
        // Progress implies the runner accepted the job even if that message was lost.
        this.sql.exec("UPDATE jobs SET state = 'RUNNING' WHERE id = ?", msg.jobId);
        await markJobRunning(this.env, msg.jobId, row.backup_id);
      }
      await writeProgress(this.env, msg.jobId, progress);
    }
  }

  private async onResult(ws: WebSocket, msg: Extract<RunnerMessage, { type: "job.result" }>): Promise<void> {
    const row = this.job(msg.jobId);
    if (row && !isTerminal(row.state)) {
      const final = await finishJob(this.env, {
        ...owner(row, "runner"),
        jobId: msg.jobId,
        backupId: row.backup_id,
        state: msg.status,
        result: msg.result,
        error: msg.error,
        warnings: msg.warnings,
        progress: row.progress,
      });
      this.sql.exec(
        "UPDATE jobs SET state = ?, lease_until = NULL, secrets = NULL WHERE id = ?",
        final,
        msg.jobId,
      );
      this.lastProgressWrite.delete(msg.jobId);
    }
    // Acked only after D1 has the result (or already had it): the runner may then drop it from its outbox.
    this.send(ws, { type: "result.ack", jobId: msg.jobId });
  }

  /** The runner's host inventory replaces its rows in D1 (tenant and runner from the socket, never the message). */
  private async onInventory(
    ws: WebSocket,
    msg: Extract<RunnerMessage, { type: "inventory" }>,
  ): Promise<void> {
    const att = ws.deserializeAttachment() as SocketAttachment;
    await replaceRunnerDomains(this.env, {
      tenantId: att.tenantId,
      runnerId: att.runnerId,
      domains: msg.domains,
      collectedAt: msg.collectedAt,
    });
  }

  // ---- RPC from the Worker ----------------------------------------------------------------

  /** Asks the connected runner for a fresh inventory report; false when it is not connected. */
  async requestInventory(): Promise<{ sent: boolean }> {
    const ws = this.openSockets().find(
      (s) => (s.deserializeAttachment() as SocketAttachment | null)?.helloAt,
    );
    if (!ws) return { sent: false };
    this.send(ws, { type: "inventory.request" });
    return { sent: true };
  }

  /** Records a new job and delivers it at once if the runner is connected; otherwise it waits (PENDING). */
  async enqueue(input: LedgerJobInput): Promise<{ delivered: boolean }> {
    const now = Date.now();
    this.sql.exec(
      `INSERT OR IGNORE INTO jobs (id, tenant_id, runner_id, type, state, spec, secrets, backup_id, lease_until, progress, created_at)
       VALUES (?, ?, ?, ?, 'PENDING', ?, ?, ?, NULL, NULL, ?)`,
      input.jobId,
      input.tenantId,
      input.runnerId,
      input.type,
      JSON.stringify(input.spec),
      input.secrets,
      input.backupId,
      now,
    );
    const ws = this.openSockets().find(
      (s) => (s.deserializeAttachment() as SocketAttachment | null)?.helloAt,
    );
    const row = this.job(input.jobId);
    if (!ws || !row || row.state !== "PENDING") return { delivered: false };
    await this.deliver(ws, row);
    return { delivered: true };
  }

  /** `mode: "pause"` (sync): the runner stops the job but keeps its upload for a later resume. */
  async cancel(jobId: string, mode: "cancel" | "pause" = "cancel"): Promise<{ state: JobState | null }> {
    const row = this.job(jobId);
    if (!row) return { state: null };
    if (isTerminal(row.state)) return { state: row.state as JobState };
    if (row.state === "PENDING") {
      this.sql.exec(
        "UPDATE jobs SET state = 'CANCELLED', lease_until = NULL, secrets = NULL WHERE id = ?",
        jobId,
      );
      await finishJob(this.env, {
        ...owner(row, "system"),
        jobId,
        backupId: row.backup_id,
        state: "CANCELLED",
        error:
          mode === "pause"
            ? { code: "PAUSED", message: "paused before delivery" }
            : { code: "CANCELLED", message: "cancelled before delivery" },
      });
      return { state: "CANCELLED" };
    }
    // Delivered or running: the runner stops it and reports the final state with job.result.
    for (const ws of this.openSockets())
      this.send(ws, { type: "job.cancel", jobId, ...(mode === "pause" && { mode }) });
    return { state: row.state as JobState };
  }

  /** Closes the socket (4001) and refuses every later connection. */
  async revoke(): Promise<void> {
    this.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('revoked', ?)", String(Date.now()));
    for (const ws of this.ctx.getWebSockets()) closeQuietly(ws, CloseCode.Unauthorized, "runner revoked");
    // A revoked runner will never run them: fail its unfinished jobs now rather than at lease expiry.
    const open = this.sql
      .exec<LedgerRow>("SELECT * FROM jobs WHERE state IN ('PENDING','DELIVERED','RUNNING')")
      .toArray();
    for (const row of open) {
      this.sql.exec(
        "UPDATE jobs SET state = 'FAILED', lease_until = NULL, secrets = NULL WHERE id = ?",
        row.id,
      );
      await finishJob(this.env, {
        ...owner(row, "system"),
        jobId: row.id,
        backupId: row.backup_id,
        state: "FAILED",
        error: { code: "RUNNER_REVOKED", message: "the runner was revoked" },
      });
    }
  }

  /** Live progress straight from the ledger (D1 holds a throttled copy). */
  async progress(jobId: string): Promise<Record<string, number | string> | null> {
    const row = this.job(jobId);
    return row?.progress ? (JSON.parse(row.progress) as Record<string, number | string>) : null;
  }

  // ---- leases -----------------------------------------------------------------------------

  override async alarm(): Promise<void> {
    try {
      const now = Date.now();
      // Heartbeats are answered without waking us; their timestamp still counts as a sign of life.
      let heartbeat = 0;
      for (const ws of this.openSockets()) {
        heartbeat = Math.max(heartbeat, this.ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? 0);
      }
      if (heartbeat + this.leaseMs > now) {
        this.sql.exec(
          `UPDATE jobs SET lease_until = ? WHERE state IN ${ACTIVE} AND lease_until < ?`,
          heartbeat + this.leaseMs,
          heartbeat + this.leaseMs,
        );
      }
      const expired = this.sql
        .exec<LedgerRow>(`SELECT * FROM jobs WHERE state IN ${ACTIVE} AND lease_until <= ?`, now)
        .toArray();
      for (const row of expired) {
        this.sql.exec(
          "UPDATE jobs SET state = 'INTERRUPTED', lease_until = NULL, secrets = NULL WHERE id = ?",
          row.id,
        );
        await finishJob(this.env, {
          ...owner(row, "system"),
          jobId: row.id,
          backupId: row.backup_id,
          state: "INTERRUPTED",
          error: { code: "INTERRUPTED", message: "the runner stopped reporting (lease expired)" },
        });
      }
      const next = this.sql
        .exec<{ t: number | null }>(`SELECT MIN(lease_until) AS t FROM jobs WHERE state IN ${ACTIVE}`)
        .one().t;
      if (next !== null) await this.ctx.storage.setAlarm(next);
    } catch (e) {
      this.log("alarm", e);
      throw e; // let the runtime retry the alarm
    }
  }

  private async ensureAlarm(at: number): Promise<void> {
    const cur = await this.ctx.storage.getAlarm();
    if (cur === null || cur > at) await this.ctx.storage.setAlarm(at);
  }

  // ---- helpers ----------------------------------------------------------------------------

  private job(id: string): LedgerRow | undefined {
    return this.sql.exec<LedgerRow>("SELECT * FROM jobs WHERE id = ?", id).toArray()[0];
  }

  private async deliver(ws: WebSocket, row: LedgerRow): Promise<void> {
    const token = await signJobToken(this.env.JOB_SIGNING_KEYS, {
      jobId: row.id,
      runnerId: row.runner_id,
      tenantId: row.tenant_id,
      job: JSON.parse(row.spec) as JobSpec,
      secrets: row.secrets,
    });
    this.send(ws, { type: "job", jobId: row.id, token });
    const leaseUntil = Date.now() + this.leaseMs;
    const wasPending = row.state === "PENDING";
    this.sql.exec("UPDATE jobs SET state = 'DELIVERED', lease_until = ? WHERE id = ?", leaseUntil, row.id);
    await this.ensureAlarm(leaseUntil);
    // Off the dispatch path; guarded by the from-state so it cannot overwrite RUNNING if the accept wins.
    if (wasPending) {
      this.ctx.waitUntil(
        moveJobState(this.env, row.id, "PENDING", "DELIVERED").catch((e) => this.log("deliver", e)),
      );
    }
  }

  private send(ws: WebSocket, msg: ServerMessage): void {
    ws.send(JSON.stringify(msg));
  }

  private log(method: string, e: unknown): void {
    console.error(`RunnerSession.${method}:`, e instanceof Error ? e.message : String(e));
  }
}

const owner = (row: LedgerRow, actor: "runner" | "system") => ({
  type: row.type,
  tenantId: row.tenant_id,
  runnerId: row.runner_id,
  actor,
});

const isTerminal = isTerminalJobState;

function byteLength(s: string): number {
  // A UTF-16 unit is at most 3 UTF-8 bytes: skip the encode for the common small message.
  return s.length * 3 <= MAX_MESSAGE_BYTES ? s.length : new TextEncoder().encode(s).byteLength;
}

function closeQuietly(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code, reason);
  } catch {
    // already closed
  }
}
