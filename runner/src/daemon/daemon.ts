import os from "node:os";
import WebSocket from "ws";
import type { JWK } from "jose";
import { JobRejectCode } from "../../../shared/errors";
import { ServerMessage, type JobDelivery, type Welcome } from "../../../shared/protocol/server-messages";
import type { RunnerMessage } from "../../../shared/protocol/runner-messages";
import {
  CloseCode,
  HEARTBEAT_PING,
  HEARTBEAT_PONG,
  MAX_MESSAGE_BYTES,
  PROTOCOL_VERSION,
} from "../../../shared/protocol/version";
import type { RunnerConfig } from "../config";
import type { JobHandlers } from "../jobs/types";
import { Backoff } from "../util/backoff";
import { errorMessage, type Logger } from "../util/log";
import { connectUrl, createConnectToken } from "./connect-token";
import { JobRunner } from "./job-runner";
import { JobRejection, JobVerifier } from "./job-verifier";
import { Journal } from "./journal";
import type { ProgressReporterOptions } from "./progress";
import { inventoryReport, loadHost } from "../jobs/hosting-host";

export const RUNNER_VERSION = "0.1.0";

/**
 * The runner daemon: one outbound WebSocket to the control plane, kept alive with heartbeats and
 * re-opened with jittered exponential backoff; every job verified, journaled, then run in the pool.
 */
export interface DaemonOptions {
  config: RunnerConfig;
  handlers: JobHandlers;
  log: Logger;
  backoff?: { baseMs?: number; maxMs?: number; unauthorizedMs?: number; random?: () => number };
  /** Give up on a connection that has not said `welcome` within this long. */
  welcomeTimeoutMs?: number;
  progress?: ProgressReporterOptions;
  hostname?: string;
}

type Conn = {
  ws: WebSocket;
  welcomed: boolean;
  lastSeen: number;
  heartbeat?: NodeJS.Timeout;
  leaseKeepalive?: NodeJS.Timeout;
  welcomeTimer?: NodeJS.Timeout;
};

export class RunnerDaemon {
  private journal?: Journal;
  private runner?: JobRunner;
  private readonly verifier: JobVerifier;
  private readonly backoff: Backoff;
  private conn?: Conn;
  private reconnectTimer?: NodeJS.Timeout;
  private pruneTimer?: NodeJS.Timeout;
  private stopping = false;
  private deliveries: Promise<void> = Promise.resolve();
  private stopped?: Promise<void>;
  /** Number of connection attempts so far (observability and tests). */
  connectAttempts = 0;

  constructor(private readonly opts: DaemonOptions) {
    const { config } = opts;
    this.verifier = new JobVerifier({
      runnerId: config.runnerId,
      tenantId: config.tenantId,
      jwks: config.jwks as { keys: JWK[] },
      encryptionPrivateJwk: config.keys.encryption.privateJwk as JWK,
    });
    this.backoff = new Backoff({
      baseMs: opts.backoff?.baseMs ?? 1000,
      maxMs: opts.backoff?.maxMs ?? 60_000,
      random: opts.backoff?.random,
    });
  }

  async start(): Promise<void> {
    const { config, log } = this.opts;
    const { journal, interrupted } = await Journal.open(config.stateDir);
    this.journal = journal;
    for (const jobId of interrupted)
      log.warn("job was interrupted by a restart; reported FAILED, not re-run", { jobId });
    await journal.prune();
    this.pruneTimer = setInterval(
      () => void journal.prune().catch((e) => log.error("journal prune failed", { error: errorMessage(e) })),
      10 * 60_000,
    );
    this.pruneTimer.unref();
    this.runner = new JobRunner({
      concurrency: config.concurrency,
      config,
      journal,
      log,
      progress: this.opts.progress,
      sendProgress: (m) => this.send(m),
      sendResult: (m) => this.send(m),
    });
    log.info("runner starting", {
      runnerId: config.runnerId,
      url: config.controlPlaneUrl,
      concurrency: config.concurrency,
    });
    this.connect();
  }

  /** Stop accepting jobs, cancel running ones, flush their results, close the socket. Idempotent. */
  stop(): Promise<void> {
    this.stopped ??= this.doStop();
    return this.stopped;
  }

  isConnected(): boolean {
    return this.conn?.welcomed === true && this.conn.ws.readyState === WebSocket.OPEN;
  }

  private async doStop(): Promise<void> {
    const { log } = this.opts;
    this.stopping = true;
    log.info("runner stopping");
    clearTimeout(this.reconnectTimer);
    clearInterval(this.pruneTimer);
    await this.deliveries.catch(() => undefined);
    await this.runner?.stopAll();
    const conn = this.conn;
    if (conn) {
      this.clearConnTimers(conn);
      if (conn.ws.readyState === WebSocket.OPEN || conn.ws.readyState === WebSocket.CONNECTING) {
        const closed = new Promise<void>((r) => conn.ws.once("close", () => r()));
        // close() sends after everything already queued (the final results), then the close frame.
        if (conn.ws.readyState === WebSocket.OPEN) conn.ws.close(CloseCode.Normal, "runner stopping");
        else conn.ws.terminate();
        const timer = setTimeout(() => conn.ws.terminate(), 3000);
        await closed;
        clearTimeout(timer);
      }
    }
    log.info("runner stopped");
  }

  private connect(): void {
    if (this.stopping) return;
    this.connectAttempts++;
    const { config, log } = this.opts;
    const url = connectUrl(config.controlPlaneUrl);
    void createConnectToken(config.runnerId, config.keys.signing.privateJwk as JWK).then(
      (token) => {
        if (this.stopping) return;
        let ws: WebSocket;
        try {
          ws = new WebSocket(url, {
            headers: { Authorization: `Bearer ${token}` },
            maxPayload: MAX_MESSAGE_BYTES,
            handshakeTimeout: 15_000,
            perMessageDeflate: false,
          });
        } catch (err) {
          log.error("cannot open connection", { url, error: errorMessage(err) });
          this.scheduleReconnect(false, 0, "");
          return;
        }
        const conn: Conn = { ws, welcomed: false, lastSeen: Date.now() };
        this.conn = conn;
        let httpStatus: number | undefined;
        ws.on("open", () => {
          log.info("connected", { url });
          this.sendOn(conn, {
            type: "hello",
            protocol: PROTOCOL_VERSION,
            runnerVersion: RUNNER_VERSION,
            hostname: (this.opts.hostname ?? os.hostname()).slice(0, 255),
            platform: `${process.platform}-${process.arch}`.slice(0, 64),
            activeJobIds: (this.runner?.activeJobIds() ?? []).slice(0, 256),
          });
          conn.welcomeTimer = setTimeout(() => {
            log.warn("no welcome from the control plane; reconnecting");
            ws.terminate();
          }, this.opts.welcomeTimeoutMs ?? 30_000);
        });
        ws.on("message", (data, isBinary) => this.onMessage(conn, data as Buffer, isBinary));
        ws.on("error", (err) => {
          const m = /Unexpected server response: (\d+)/.exec(err.message);
          if (m) httpStatus = Number(m[1]);
          log.warn("connection error", { error: err.message });
        });
        ws.on("close", (code, reason) => {
          this.clearConnTimers(conn);
          if (this.conn === conn) this.conn = undefined;
          if (this.stopping) return;
          const unauthorized = code === CloseCode.Unauthorized || httpStatus === 401 || httpStatus === 403;
          this.scheduleReconnect(unauthorized, code, reason.toString().slice(0, 200));
        });
      },
      (err) => {
        log.error("cannot sign connect token", { error: errorMessage(err) });
        this.scheduleReconnect(false, 0, "");
      },
    );
  }

  private scheduleReconnect(unauthorized: boolean, code: number, reason: string): void {
    const { log } = this.opts;
    let delay: number;
    if (unauthorized) {
      // Revoked or unknown: hammering the control plane will not help; an operator has to act.
      const long = this.opts.backoff?.unauthorizedMs ?? 10 * 60_000;
      delay = Math.floor(long / 2 + (this.opts.backoff?.random ?? Math.random)() * (long / 2));
      log.error("control plane refused this runner (revoked or not authorized); re-enroll if this persists", {
        code,
        delayMs: delay,
      });
    } else {
      delay = this.backoff.next();
      log.warn("disconnected; reconnecting", {
        code,
        reason: reason || undefined,
        delayMs: delay,
        attempt: this.backoff.attempts,
      });
    }
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  private clearConnTimers(conn: Conn): void {
    clearInterval(conn.heartbeat);
    clearInterval(conn.leaseKeepalive);
    clearTimeout(conn.welcomeTimer);
  }

  private onMessage(conn: Conn, data: Buffer, isBinary: boolean): void {
    const { log } = this.opts;
    conn.lastSeen = Date.now();
    if (isBinary || data.byteLength > MAX_MESSAGE_BYTES) {
      log.warn("ignored binary or oversized message", { bytes: data.byteLength });
      return;
    }
    const text = data.toString("utf8");
    if (text === HEARTBEAT_PONG) return;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      log.warn("ignored message that is not JSON", { bytes: data.byteLength });
      return;
    }
    const parsed = ServerMessage.safeParse(json);
    if (!parsed.success) {
      const type = (json as { type?: unknown } | null)?.type;
      log.warn("ignored unknown or malformed message", {
        type: typeof type === "string" ? type.slice(0, 64) : undefined,
      });
      return;
    }
    const msg = parsed.data;
    switch (msg.type) {
      case "welcome":
        this.onWelcome(conn, msg);
        break;
      case "job":
        // Serialised: two copies of one job must not both pass the journal check.
        this.deliveries = this.deliveries
          .then(() => this.onJob(msg))
          .catch((e) => log.error("job delivery failed", { error: errorMessage(e) }));
        break;
      case "job.cancel":
        if (this.runner?.cancel(msg.jobId, undefined, msg.mode))
          log.info("job cancel requested", { jobId: msg.jobId, mode: msg.mode ?? "cancel" });
        else log.info("cancel for a job that is not running; ignored", { jobId: msg.jobId });
        break;
      case "inventory.request":
        this.sendInventory(conn);
        break;
      case "result.ack":
        void this.journal?.ack(msg.jobId).then(
          (acked) => acked && log.debug("result acknowledged", { jobId: msg.jobId }),
          (e) => log.error("cannot record result ack", { jobId: msg.jobId, error: errorMessage(e) }),
        );
        break;
    }
  }

  private onWelcome(conn: Conn, msg: Welcome): void {
    const { config, log } = this.opts;
    if (msg.runnerId !== config.runnerId) {
      log.error("welcome is for another runner id; closing", {
        expected: config.runnerId,
        got: msg.runnerId,
      });
      conn.ws.close(CloseCode.PolicyViolation, "wrong runner id");
      return;
    }
    clearTimeout(conn.welcomeTimer);
    conn.welcomed = true;
    this.backoff.reset();
    const interval = config.heartbeatIntervalMs ?? msg.heartbeatIntervalMs;
    log.info("welcome", { heartbeatMs: interval, leaseMs: msg.leaseMs });
    clearInterval(conn.heartbeat);
    conn.heartbeat = setInterval(() => {
      if (Date.now() - conn.lastSeen > 3 * interval) {
        log.warn("no pong for 3 heartbeat intervals; reconnecting");
        conn.ws.terminate();
        return;
      }
      if (conn.ws.readyState === WebSocket.OPEN) conn.ws.send(HEARTBEAT_PING);
    }, interval);
    // Heartbeats are answered without waking the control plane's session, so they renew no lease:
    // running jobs report in at least three times per lease.
    clearInterval(conn.leaseKeepalive);
    conn.leaseKeepalive = setInterval(
      () => this.runner?.keepalive(),
      Math.max(50, Math.floor(msg.leaseMs / 3)),
    );
    for (const result of this.journal?.outbox() ?? []) this.sendOn(conn, result);
    this.sendInventory(conn);
  }

  /** Hosting servers report what they hold after `welcome` and on request; an error is logged, never fatal. */
  private sendInventory(conn: Conn): void {
    const { config, log } = this.opts;
    if (!config.hosting) return;
    void loadHost(config).then(
      (host) => {
        if (!host) return;
        const msg = inventoryReport(host.inventory);
        for (const w of host.inventory.warnings) log.warn("inventory", { warning: w });
        this.sendOn(conn, msg);
        log.info("inventory sent", { domains: msg.domains.length });
      },
      (e) => log.error("cannot collect the host inventory", { error: errorMessage(e) }),
    );
  }

  private async onJob(msg: JobDelivery): Promise<void> {
    const { log, config } = this.opts;
    const journal = this.journal!;
    if (this.stopping) return; // not answered: the control plane redelivers after the restart
    const reject = (code: JobRejectCode, reason: string) => {
      log.warn("job rejected", { jobId: msg.jobId, code, reason });
      this.send({ type: "job.rejected", jobId: msg.jobId, code, reason: reason.slice(0, 1024) });
    };
    let verified;
    try {
      verified = await this.verifier.verify(msg.token, { lookup: (id, fp) => journal.lookup(id, fp) });
      if (verified.claims.jti !== msg.jobId)
        throw new JobRejection(JobRejectCode.Malformed, "delivery jobId differs from the token's jti");
    } catch (err) {
      if (err instanceof JobRejection) return reject(err.code, err.message);
      throw err;
    }
    const { claims } = verified;
    if (verified.kind === "redelivery") {
      await journal.noteRedelivery(claims.jti, claims.exp);
      log.info("job redelivered; already journaled, not re-run", { jobId: claims.jti });
      this.send({ type: "job.accepted", jobId: claims.jti });
      const entry = journal.get(claims.jti);
      if (entry?.state === "finished" && entry.result) this.send(entry.result);
      return;
    }
    const handler = this.opts.handlers[claims.job.type];
    if (!handler)
      return reject(JobRejectCode.UnsupportedJob, `this runner does not run ${claims.job.type} jobs`);
    try {
      await handler.validate?.(claims, verified.secrets, config);
    } catch (err) {
      if (err instanceof JobRejection) return reject(err.code, err.message);
      return reject(JobRejectCode.InvalidParams, errorMessage(err));
    }
    if (this.stopping) return;
    await journal.accept(claims.jti, verified.fingerprint, claims.job.type, claims.exp);
    log.info("job accepted", { jobId: claims.jti, type: claims.job.type });
    this.send({ type: "job.accepted", jobId: claims.jti });
    this.runner!.submit(claims, verified.secrets, handler);
  }

  private send(msg: RunnerMessage): void {
    if (this.conn) this.sendOn(this.conn, msg);
  }

  private sendOn(conn: Conn, msg: RunnerMessage): void {
    if (conn.ws.readyState !== WebSocket.OPEN) return; // results stay in the outbox; the rest is redelivered
    conn.ws.send(JSON.stringify(msg));
  }
}
