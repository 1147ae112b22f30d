import { mkdir, mkdtemp, symlink } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { importJWK, jwtVerify, type JWK } from "jose";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { BackupJobResult } from "../../../shared/protocol/runner-messages";
import type { BackupOptions, BackupResult } from "../archive/types";
import { parseConfig, type RunnerConfig, type RunnerConfigInput } from "../config";
import { backupHandler } from "../jobs/backup";
import type { JobHandlers } from "../jobs/types";
import { memoryLogger } from "../util/log";
import { RunnerDaemon } from "./daemon";
import {
  backupParams,
  encryptSecrets,
  FakeControlPlane,
  makeRunnerConfig,
  makeSigningKey,
  signJob,
  type SigningKey,
} from "./test-fixtures";

/** A fake archive engine: records calls, emits a burst of progress, optionally waits for abort. */
function fakeEngine(opts: { hang?: boolean } = {}) {
  const calls: BackupOptions[] = [];
  const createBackup = async (o: BackupOptions): Promise<BackupResult> => {
    calls.push(o);
    for (let i = 1; i <= 1000; i++) o.onProgress?.({ bytes: i * 1000, files: i, totalBytes: 1_000_000 });
    if (opts.hang) {
      await new Promise((_, reject) => {
        o.signal?.addEventListener("abort", () =>
          reject(Object.assign(new Error("aborted"), { code: "CANCELLED" })),
        );
      });
    }
    return {
      path: path.join(o.outDir, "site_full_20260101_000000.tar.zst"),
      fileName: "site_full_20260101_000000.tar.zst",
      size: 1234,
      sha256: "a".repeat(64),
      fileCount: 1000,
      bytesIn: 1_000_000,
      durationMs: 5,
      warnings: [],
    };
  };
  return { calls, handlers: { backup: backupHandler(async () => createBackup) } as JobHandlers };
}

let cp: SigningKey;
let base: { input: RunnerConfigInput; dir: string; signingPublicJwk: JWK; encryptionPublicJwk: JWK };
let source: string;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  cp = await makeSigningKey("cp-1");
  const r = await makeRunnerConfig(cp);
  source = path.join(r.dir, "srv", "site");
  await mkdir(source, { recursive: true });
  await symlink("/etc", path.join(r.dir, "srv", "escape"));
  base = {
    input: { ...r.input, defaultSources: [source], allowedRoots: [path.join(r.dir, "srv")] },
    dir: r.dir,
    signingPublicJwk: r.signingPublicJwk,
    encryptionPublicJwk: r.encryptionPublicJwk,
  };
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(handlers: JobHandlers, over: Partial<RunnerConfigInput> = {}) {
  const server = await FakeControlPlane.start();
  const stateDir = over.stateDir ?? (await mkdtemp(path.join(os.tmpdir(), "cairn-daemon-state-")));
  const config: RunnerConfig = parseConfig({ ...base.input, controlPlaneUrl: server.url, stateDir, ...over });
  const log = memoryLogger();
  const daemon = new RunnerDaemon({
    config,
    handlers,
    log,
    backoff: { baseMs: 20, maxMs: 100, unauthorizedMs: 60_000 },
  });
  cleanups.push(async () => {
    await daemon.stop();
    await server.close();
  });
  await daemon.start();
  const conn = await server.connection(0);
  await server.message(conn, (m) => m.type === "hello", "hello");
  return { server, daemon, conn, log, config, stateDir };
}

describe("runner daemon", () => {
  it("authenticates, says hello, runs a job once with throttled progress, and keeps the result until acked", async () => {
    const engine = fakeEngine();
    const { server, conn, daemon } = await setup(engine.handlers);

    // The connect token is the runner's own EdDSA JWT.
    const auth = conn.headers.authorization ?? "";
    expect(auth.startsWith("Bearer ")).toBe(true);
    const { payload, protectedHeader } = await jwtVerify(
      auth.slice(7),
      await importJWK(base.signingPublicJwk, "EdDSA"),
      {
        algorithms: ["EdDSA"],
        audience: "cairn-control-plane:connect",
        issuer: "run_test1",
        subject: "run_test1",
        typ: "cairn-runner+jwt",
      },
    );
    expect(protectedHeader.alg).toBe("EdDSA");
    expect(typeof payload.jti).toBe("string");
    expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(120);
    const hello = conn.messages[0]!;
    expect(hello).toMatchObject({ type: "hello", protocol: 1, activeJobIds: [] });

    server.welcome(conn);
    const token = await signJob(cp, { jti: "job_1" });
    server.send(conn, { type: "job", jobId: "job_1", token });
    await server.message(conn, (m) => m.type === "job.accepted" && m.jobId === "job_1", "accepted");
    const result = await server.message(conn, (m) => m.type === "job.result", "result");
    expect(result.status).toBe("SUCCEEDED");
    expect(BackupJobResult.parse(result.result).fileName).toBe("site_full_20260101_000000.tar.zst");
    expect(engine.calls).toHaveLength(1);
    expect(engine.calls[0]!.sources).toEqual([source]);
    expect(engine.calls[0]!.outDir).toBe(base.input.backupDir);
    // 1000 synchronous progress callbacks → one immediate message; the trailing one is superseded by the result.
    const progress = conn.messages.filter((m) => m.type === "job.progress");
    expect(progress).toHaveLength(1);
    expect(progress[0]).toMatchObject({ jobId: "job_1", bytes: 1000, files: 1, percent: 0.1 });

    // Redelivery (freshly signed): accepted again, stored result re-sent, not re-run.
    const before = conn.messages.length;
    server.send(conn, {
      type: "job",
      jobId: "job_1",
      token: await signJob(cp, { jti: "job_1", iat: Math.floor(Date.now() / 1000) + 1 }),
    });
    await server.waitFor("re-sent result", () =>
      conn.messages.slice(before).find((m) => m.type === "job.result"),
    );
    expect(conn.messages.slice(before).map((m) => m.type)).toEqual(["job.accepted", "job.result"]);
    expect(engine.calls).toHaveLength(1);

    // Not acked: after a dropped connection the result is sent again, after the next welcome.
    conn.ws.terminate();
    const conn2 = await server.connection(1);
    await server.message(conn2, (m) => m.type === "hello", "hello 2");
    expect(conn2.messages.some((m) => m.type === "job.result")).toBe(false);
    server.welcome(conn2);
    await server.message(conn2, (m) => m.type === "job.result" && m.jobId === "job_1", "outbox re-send");
    server.send(conn2, { type: "result.ack", jobId: "job_1" });
    await server.waitFor(
      "ack journaled",
      () => (daemon as unknown as { journal: { outbox(): unknown[] } }).journal.outbox().length === 0,
    );

    conn2.ws.terminate();
    const conn3 = await server.connection(2);
    await server.message(conn3, (m) => m.type === "hello", "hello 3");
    server.welcome(conn3);
    server.send(conn3, { type: "job.cancel", jobId: "job_unknown" }); // harmless
    server.send(conn3, { type: "what.is.this", x: 1 }); // unknown: ignored
    server.send(conn3, "not json");
    const token2 = await signJob(cp, { jti: "job_2" });
    server.send(conn3, { type: "job", jobId: "job_2", token: token2 });
    await server.message(conn3, (m) => m.type === "job.result" && m.jobId === "job_2", "second job");
    expect(conn3.messages.some((m) => m.type === "job.result" && m.jobId === "job_1")).toBe(false);
    expect(daemon.connectAttempts).toBe(3);
  });

  it("rejects bad job tokens with their code and never runs them", async () => {
    const engine = fakeEngine();
    const { server, conn } = await setup(engine.handlers);
    server.welcome(conn);
    const now = Math.floor(Date.now() / 1000);
    const forger = await makeSigningKey("cp-1");
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
    const claims = {
      iss: "cairn-control-plane",
      aud: "run_test1",
      sub: "ten_test1",
      jti: "job_none",
      iat: now,
      exp: now + 300,
      job: { type: "backup", params: backupParams() },
    };
    const cases: [string, string, string][] = [
      ["job_forged", await signJob(cp, { jti: "job_forged", key: forger }), "BAD_SIGNATURE"],
      ["job_expired", await signJob(cp, { jti: "job_expired", iat: now - 1000, exp: now - 500 }), "EXPIRED"],
      ["job_aud", await signJob(cp, { jti: "job_aud", runnerId: "run_other" }), "WRONG_AUDIENCE"],
      [
        "job_none",
        `${b64({ alg: "none", typ: "cairn-job+jwt", kid: "cp-1" })}.${b64(claims)}.`,
        "BAD_ALGORITHM",
      ],
      ["job_kid", await signJob(await makeSigningKey("cp-x"), { jti: "job_kid" }), "UNKNOWN_KID"],
      ["job_typ", await signJob(cp, { jti: "job_typ", header: { typ: "JWT" } }), "WRONG_TYPE"],
      [
        "job_src",
        await signJob(cp, {
          jti: "job_src",
          job: { type: "backup", params: backupParams({ sources: ["/etc"] }) },
        }),
        "SOURCE_NOT_ALLOWED",
      ],
      [
        "job_link",
        await signJob(cp, {
          jti: "job_link",
          job: { type: "backup", params: backupParams({ sources: [path.join(base.dir, "srv", "escape")] }) },
        }),
        "SOURCE_NOT_ALLOWED",
      ],
      [
        "job_pw",
        await signJob(cp, {
          jti: "job_pw",
          job: { type: "backup", params: backupParams({ encryption: { mode: "password" } }) },
        }),
        "INVALID_PARAMS",
      ],
      [
        "job_restore",
        await signJob(cp, {
          jti: "job_restore",
          job: {
            type: "verify",
            params: {
              binding: backupParams().binding,
              fileName: "site_full_20260101_000000.tar.zst",
              destination: { kind: "local" },
              encryption: { mode: "none" },
            },
          },
        }),
        "UNSUPPORTED_JOB",
      ],
      ["job_mismatch", await signJob(cp, { jti: "job_other" }), "MALFORMED"],
    ];
    for (const [jobId, token] of cases) server.send(conn, { type: "job", jobId, token });
    await server.waitFor(
      "all rejections",
      () => conn.messages.filter((m) => m.type === "job.rejected").length === cases.length,
    );
    const got = Object.fromEntries(
      conn.messages.filter((m) => m.type === "job.rejected").map((m) => [m.jobId, m.code]),
    );
    expect(got).toEqual(Object.fromEntries(cases.map(([id, , code]) => [id, code])));
    expect(conn.messages.some((m) => m.type === "job.accepted")).toBe(false);
    expect(engine.calls).toHaveLength(0);
  });

  it("passes secrets to the engine and never logs them", async () => {
    const engine = fakeEngine();
    const { server, conn, log } = await setup(engine.handlers);
    server.welcome(conn);
    const dataKey = Buffer.alloc(32, 7).toString("base64");
    const secrets = await encryptSecrets(base.encryptionPublicJwk, { dataKey });
    const job = {
      type: "backup",
      params: backupParams({ encryption: { mode: "panel", keyId: "pk_1", wrappedKey: "wrapped" } }),
    };
    const token = await signJob(cp, { jti: "job_enc", job, secrets });
    server.send(conn, { type: "job", jobId: "job_enc", token });
    await server.message(conn, (m) => m.type === "job.result", "result");
    const enc = engine.calls[0]!.encryption;
    expect(enc.mode).toBe("panel");
    if (enc.mode === "panel") {
      expect(Buffer.from(enc.dataKey).equals(Buffer.alloc(32, 7))).toBe(true);
      expect(enc.wrappedKey).toBe("wrapped");
    }
    const all = log.lines.join("\n");
    expect(all).not.toContain(dataKey);
    expect(all).not.toContain(token.slice(-20));
  });

  it("remembers jobs across a restart: a replay with another payload is REPLAYED, the same job is not re-run", async () => {
    const engine = fakeEngine();
    const first = await setup(engine.handlers);
    first.server.welcome(first.conn);
    first.server.send(first.conn, {
      type: "job",
      jobId: "job_r",
      token: await signJob(cp, { jti: "job_r" }),
    });
    await first.server.message(first.conn, (m) => m.type === "job.result", "result");
    await first.daemon.stop();
    expect(first.conn.closed?.code).toBe(1000);

    const second = await setup(engine.handlers, { stateDir: first.stateDir });
    second.server.welcome(second.conn);
    await second.server.message(
      second.conn,
      (m) => m.type === "job.result" && m.jobId === "job_r",
      "outbox after restart",
    );
    const other = await signJob(cp, {
      jti: "job_r",
      job: { type: "backup", params: backupParams({ name: "different" }) },
    });
    second.server.send(second.conn, { type: "job", jobId: "job_r", token: other });
    const rej = await second.server.message(
      second.conn,
      (m) => m.type === "job.rejected",
      "replay rejection",
    );
    expect(rej).toMatchObject({ jobId: "job_r", code: "REPLAYED" });
    second.server.send(second.conn, {
      type: "job",
      jobId: "job_r",
      token: await signJob(cp, { jti: "job_r" }),
    });
    await second.server.message(second.conn, (m) => m.type === "job.accepted", "accepted again");
    expect(engine.calls).toHaveLength(1);
  });

  it("cancels a running job on job.cancel, and queues beyond the concurrency limit", async () => {
    const engine = fakeEngine({ hang: true });
    const { server, conn } = await setup(engine.handlers);
    server.welcome(conn);
    server.send(conn, { type: "job", jobId: "job_c1", token: await signJob(cp, { jti: "job_c1" }) });
    server.send(conn, { type: "job", jobId: "job_c2", token: await signJob(cp, { jti: "job_c2" }) });
    await server.message(conn, (m) => m.type === "job.accepted" && m.jobId === "job_c2", "second accepted");
    await server.waitFor("first running", () => engine.calls.length === 1);
    server.send(conn, { type: "job.cancel", jobId: "job_c2" }); // queued: dropped, never started
    const r2 = await server.message(
      conn,
      (m) => m.type === "job.result" && m.jobId === "job_c2",
      "queued cancel",
    );
    expect(r2.status).toBe("CANCELLED");
    server.send(conn, { type: "job.cancel", jobId: "job_c1" });
    const r1 = await server.message(
      conn,
      (m) => m.type === "job.result" && m.jobId === "job_c1",
      "running cancel",
    );
    expect(r1).toMatchObject({ status: "CANCELLED", error: { code: "CANCELLED" } });
    expect(engine.calls).toHaveLength(1);
  });

  it("keeps a quiet running job's lease alive with repeated progress", async () => {
    const engine = fakeEngine({ hang: true });
    const { server, conn } = await setup(engine.handlers);
    server.welcome(conn, "run_test1", 30_000, 300);
    server.send(conn, { type: "job", jobId: "job_q", token: await signJob(cp, { jti: "job_q" }) });
    // the engine reports once then goes quiet: only keepalives can produce more messages
    await server.waitFor(
      "keepalive progress",
      () => conn.messages.filter((m) => m.type === "job.progress").length >= 5,
    );
    const last = conn.messages.filter((m) => m.type === "job.progress").at(-1)!;
    expect(last).toMatchObject({ jobId: "job_q", bytes: 1_000_000, files: 1000, percent: 100 });
    server.send(conn, { type: "job.cancel", jobId: "job_q" });
    await server.message(conn, (m) => m.type === "job.result" && m.jobId === "job_q", "result");
  });

  it("on stop cancels running jobs, sends their result, and closes with 1000", async () => {
    const engine = fakeEngine({ hang: true });
    const { server, conn, daemon } = await setup(engine.handlers);
    server.welcome(conn);
    server.send(conn, { type: "job", jobId: "job_s", token: await signJob(cp, { jti: "job_s" }) });
    await server.waitFor("running", () => engine.calls.length === 1);
    await daemon.stop();
    await server.waitFor("close", () => conn.closed);
    expect(conn.closed?.code).toBe(1000);
    expect(conn.messages.find((m) => m.type === "job.result")).toMatchObject({
      jobId: "job_s",
      status: "CANCELLED",
    });
    expect(server.connections).toHaveLength(1);
  });

  it("reconnects when pongs stop, and backs off long on 4001", async () => {
    const { server, conn, daemon, log } = await setup(fakeEngine().handlers);
    server.pong = false;
    server.welcome(conn, "run_test1", 50);
    await server.waitFor("pings", () => conn.pings >= 2);
    const conn2 = await server.connection(1); // the runner gave up on the silent one
    await server.message(conn2, (m) => m.type === "hello", "hello 2");
    server.pong = true;
    conn2.ws.close(4001, "revoked");
    await server.waitFor("refusal logged", () => log.lines.some((l) => l.includes("refused this runner")));
    expect(daemon.connectAttempts).toBe(2); // the long delay (≥ 30 s here) has not elapsed
  });
});
