/**
 * `npm run bench:fleet [-- --runners 1000 --jobs 300]`
 * Connects N simulated runners (real keys, real connect tokens, real WebSockets) to one local
 * control plane and measures connect time and dispatch latency (job created -> runner received).
 * Target on a 2-core machine: dispatch p99 < 100 ms with 1,000 runners connected.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey } from "jose";
import WebSocket from "ws";
import { ApiClient } from "../scripts/lib/api-client";
import { generateDevSecrets } from "../scripts/lib/dev-secrets";
import { applyMigrations, startControlPlane } from "../scripts/lib/local-control-plane";
import {
  HEARTBEAT_PING,
  PROTOCOL_VERSION,
  RUNNER_CONNECT_AUDIENCE,
  RUNNER_CONNECT_TOKEN_TYP,
} from "../shared/protocol";

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const N = arg("runners", 1000);
const JOBS = arg("jobs", 300);
const CONCURRENCY = 50;

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
};
const fmt = (xs: number[]) =>
  `p50 ${pct(xs, 50).toFixed(1)} ms  p90 ${pct(xs, 90).toFixed(1)} ms  p99 ${pct(xs, 99).toFixed(1)} ms  max ${Math.max(...xs).toFixed(1)} ms`;

async function pool<T>(items: T[], n: number, fn: (t: T, i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

interface SimRunner {
  id: string;
  signingKey: CryptoKey;
  ws?: WebSocket;
  onJob?: (jobId: string) => void;
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "cairn-fleet-"));
  const persistDir = join(dir, "wrangler");
  await applyMigrations(persistDir);
  const secrets = await generateDevSecrets();
  const cp = await startControlPlane({ persistDir, secrets });
  const wsUrl = cp.url.replace(/^http/, "ws") + "/api/v1/runners/connect";
  try {
    const api = new ApiClient(cp.url);
    await api.setup(secrets.SETUP_TOKEN, {
      tenantName: "Fleet",
      email: "fleet@example.test",
      password: "Fleet-Bench-123!",
    });
    await api.login("fleet@example.test", "Fleet-Bench-123!");

    console.log(`enrolling ${N} runners ...`);
    const runners: SimRunner[] = [];
    const t0 = performance.now();
    await pool(
      Array.from({ length: N }, (_, i) => i),
      CONCURRENCY,
      async (i) => {
        const sign = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
        const enc = await generateKeyPair("ECDH-ES", { crv: "X25519", extractable: true });
        const { token } = await api.createEnrollmentToken();
        const res = await api.request<{ runnerId: string }>("POST", "/api/v1/runners/enroll", {
          token,
          name: `sim-${i}`,
          hostname: `sim-${i}.fleet.test`,
          signingPublicKey: await exportJWK(sign.publicKey),
          encryptionPublicKey: await exportJWK(enc.publicKey),
        });
        runners[i] = { id: res.runnerId, signingKey: sign.privateKey };
      },
    );
    console.log(`enrolled in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    const connectMs: number[] = [];
    const tc = performance.now();
    await pool(runners, CONCURRENCY, async (r) => {
      const start = performance.now();
      const now = Math.floor(Date.now() / 1000);
      const jwt = await new SignJWT({})
        .setProtectedHeader({ alg: "EdDSA", typ: RUNNER_CONNECT_TOKEN_TYP })
        .setIssuer(r.id)
        .setSubject(r.id)
        .setAudience(RUNNER_CONNECT_AUDIENCE)
        .setIssuedAt(now)
        .setExpirationTime(now + 60)
        .setJti(crypto.randomUUID())
        .sign(r.signingKey);
      const ws = new WebSocket(wsUrl, { headers: { authorization: `Bearer ${jwt}` } });
      r.ws = ws;
      await new Promise<void>((ok, fail) => {
        ws.once("error", fail);
        ws.on("message", (data) => {
          const msg = JSON.parse(String(data)) as { type: string; jobId?: string };
          if (msg.type === "welcome") {
            connectMs.push(performance.now() - start);
            ok();
          } else if (msg.type === "job" && msg.jobId) {
            r.onJob?.(msg.jobId);
            ws.send(
              JSON.stringify({
                type: "job.rejected",
                jobId: msg.jobId,
                code: "UNSUPPORTED_JOB",
                reason: "fleet benchmark",
              }),
            );
          }
        });
        ws.once("open", () =>
          ws.send(
            JSON.stringify({
              type: "hello",
              protocol: PROTOCOL_VERSION,
              runnerVersion: "bench",
              hostname: "sim",
              platform: "linux",
              activeJobIds: [],
            }),
          ),
        );
      });
    });
    const connectWall = performance.now() - tc;
    console.log(`connected ${N} runners in ${(connectWall / 1000).toFixed(2)} s (${CONCURRENCY} at a time)`);
    console.log(`connect (upgrade -> welcome): ${fmt(connectMs)}`);

    const heartbeat = setInterval(() => runners.forEach((r) => r.ws?.send(HEARTBEAT_PING)), 15_000);
    const dispatchMs: number[] = [];
    const apiMs: number[] = [];
    for (let k = 0; k < JOBS; k++) {
      const r = runners[Math.floor(Math.random() * runners.length)]!;
      const received = new Promise<number>((ok) => (r.onJob = () => ok(performance.now())));
      const start = performance.now();
      await api.createBackup({ runnerId: r.id, name: `fleet${k}`, type: "full" });
      apiMs.push(performance.now() - start);
      const at = await Promise.race([
        received,
        new Promise<number>((ok) => setTimeout(() => ok(NaN), 10_000)),
      ]);
      if (Number.isNaN(at)) throw new Error(`runner ${r.id} never received job ${k}`);
      dispatchMs.push(at - start);
    }
    clearInterval(heartbeat);
    console.log(`\n${JOBS} jobs to random runners among ${N} connected:`);
    console.log(`  API POST /backups (202):          ${fmt(apiMs)}`);
    console.log(`  dispatch (created -> received):   ${fmt(dispatchMs)}`);
    const p99 = pct(dispatchMs, 99);
    console.log(`  target p99 < 100 ms: ${p99 < 100 ? "met" : "MISSED"} (${p99.toFixed(1)} ms)`);
    runners.forEach((r) => r.ws?.close());
  } finally {
    await cp.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
