/**
 * Runner-relayed downloads end to end: the real Worker, a real `cairn-runner` and a real FTP server.
 * The archive streams runner → relay Durable Object → client and equals the backup byte for byte;
 * reused links and relay ids, bad relay tokens and an offline runner are refused clearly; a relay job that
 * fails (archive gone) ends the waiting download at once with its error.
 */
import { createHash, generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { JWK } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRelayToken } from "../../runner/src/jobs/relay-upload";
import { startFtpServer, type TestFtpServer } from "../destinations/ftp-server";
import type { BackupView } from "../support/api-views";
import {
  type Cluster,
  type RunnerHandle,
  startCluster,
  startOnlineRunner,
  waitFor,
  waitForJobEnd,
} from "../support/cluster";

let cluster: Cluster;
let runner: RunnerHandle;
let ftp: TestFtpServer;
let runnerId: string;

interface Download {
  url: string;
  relayed?: boolean;
  jobId: string;
  fileName: string;
  size: number;
  sha256: string;
}

const api = <T>(method: string, path: string, body?: unknown) => cluster.api.request<T>(method, path, body);
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const errorOf = async (res: Response) =>
  ((await res.json()) as { error: { code: string; message: string } }).error;

let backup: BackupView;

beforeAll(async () => {
  // A short relay wait so the "runner never sends" case answers quickly; every other side arrives at once.
  [cluster, ftp] = await Promise.all([
    startCluster({ RELAY_WAIT_MS: "4000" }),
    startFtpServer({ tls: false }),
  ]);
  const source = join(cluster.dir, "site");
  mkdirSync(source, { recursive: true });
  writeFileSync(join(source, "index.html"), "<h1>relay</h1>\n");
  // Incompressible, several MiB: the relay has to stream many chunks.
  writeFileSync(join(source, "media.bin"), randomBytes(5 * 1024 * 1024 + 7));
  ({ runner, runnerId } = await startOnlineRunner(cluster, "relay-1", [source]));
  const created = await api<{ backup: { id: string }; job: { id: string } }>("POST", "/api/v1/backups", {
    runnerId,
    name: "site",
    encryption: { mode: "password", password: "relay e2e Password-77!" },
  });
  const j = await waitForJobEnd(cluster, created.job.id);
  expect(j.state, JSON.stringify(j)).toBe("SUCCEEDED");
  backup = await api<BackupView>("GET", `/api/v1/backups/${created.backup.id}`);
  expect(backup.status).toBe("completed");
}, 120_000);

afterAll(async () => {
  await runner?.stop();
  await Promise.all([cluster?.close(), ftp?.close()]);
});

describe("runner-relayed download", () => {
  it("streams the runner's local archive byte for byte; the link and the relay id work once", async () => {
    const dl = await api<Download>("POST", `/api/v1/backups/${backup.id}/download`, {});
    expect(dl.relayed).toBe(true);
    expect(dl).toMatchObject({ fileName: backup.fileName, size: backup.size, sha256: backup.sha256 });
    const res = await fetch(dl.url);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-disposition")).toContain(backup.fileName);
    const body = Buffer.from(await res.arrayBuffer());
    expect(body.length).toBe(backup.size);
    expect(sha(body)).toBe(backup.sha256);
    expect(sha(readFileSync(join(runner.backupDir, backup.fileName)))).toBe(backup.sha256);
    expect((await waitForJobEnd(cluster, dl.jobId)).state).toBe("SUCCEEDED");

    // The browser link is single-use.
    const again = await fetch(dl.url);
    expect(again.status).toBe(409);
    await again.body?.cancel();

    // Even the runner itself cannot feed a relay id a second time.
    const cfg = JSON.parse(readFileSync(runner.configPath, "utf8")) as {
      runnerId: string;
      keys: { signing: { privateJwk: JWK } };
    };
    const relayId = new URL(dl.url).pathname.split("/").pop()!;
    const token = await createRelayToken(cfg.runnerId, cfg.keys.signing.privateJwk, relayId);
    const replay = await fetch(`${cluster.url}/api/v1/relay/${relayId}`, {
      method: "PUT",
      headers: { authorization: `Bearer ${token}` },
      body: "planted bytes",
    });
    expect(replay.status).toBe(409);
    expect((await errorOf(replay)).message).toMatch(/already used/);
  });

  it("a wrong download key is 401 and does not burn the link", async () => {
    const dl = await api<Download>("POST", `/api/v1/backups/${backup.id}/download`, {});
    const bad = new URL(dl.url);
    bad.searchParams.set("key", "x".repeat(43));
    const r = await fetch(bad);
    expect(r.status).toBe(401);
    await r.body?.cancel();
    const ok = await fetch(dl.url);
    expect(ok.status).toBe(200);
    expect(sha(Buffer.from(await ok.arrayBuffer()))).toBe(backup.sha256);
  });

  it("relay uploads without a valid runner token are 401", async () => {
    const dl = await api<Download>("POST", `/api/v1/backups/${backup.id}/download`, {});
    const relayId = new URL(dl.url).pathname.split("/").pop()!;
    const put = (auth?: string) =>
      fetch(`${cluster.url}/api/v1/relay/${relayId}`, {
        method: "PUT",
        headers: auth ? { authorization: auth } : {},
        body: "planted bytes",
      });
    expect((await put()).status).toBe(401);
    expect((await put("Bearer not-a-jwt")).status).toBe(401);
    // Well formed, names the real runner, but signed with a key that is not the runner's.
    const { privateKey } = generateKeyPairSync("ed25519");
    const forged = await createRelayToken(runnerId, privateKey.export({ format: "jwk" }) as JWK, relayId);
    const r = await put(`Bearer ${forged}`);
    expect(r.status).toBe(401);
    expect((await errorOf(r)).code).toBe("UNAUTHORIZED");
    // The runner's own token for another relay id does not open this one.
    const cfg = JSON.parse(readFileSync(runner.configPath, "utf8")) as {
      keys: { signing: { privateJwk: JWK } };
    };
    const other = await createRelayToken(runnerId, cfg.keys.signing.privateJwk, "rly_other");
    expect((await put(`Bearer ${other}`)).status).toBe(401);
    // The real download still arrives intact.
    const ok = await fetch(dl.url);
    expect(ok.status).toBe(200);
    expect(sha(Buffer.from(await ok.arrayBuffer()))).toBe(backup.sha256);
  });

  it("relays a copy on an FTP destination byte for byte", async () => {
    mkdirSync(join(ftp.root, "relay"), { recursive: true });
    const dest = await api<{ id: string }>("POST", "/api/v1/destinations", {
      name: "ftp-relay",
      kind: "ftp",
      config: { host: "127.0.0.1", port: ftp.port, user: ftp.user, path: "/relay" },
      credentials: { password: ftp.password },
    });
    const sync = await api<{ job: { id: string } }>("POST", `/api/v1/backups/${backup.id}/sync`, {
      destinationId: dest.id,
    });
    expect((await waitForJobEnd(cluster, sync.job.id)).state).toBe("SUCCEEDED");
    const dl = await api<Download>("POST", `/api/v1/backups/${backup.id}/download`, {
      destinationId: dest.id,
    });
    expect(dl.relayed).toBe(true);
    const res = await fetch(dl.url);
    expect(res.status).toBe(200);
    const body = Buffer.from(await res.arrayBuffer());
    expect(body.length).toBe(backup.size);
    expect(sha(body)).toBe(backup.sha256);
  });

  it("a runner that cannot send (archive gone) ends the download with 502 RELAY_FAILED naming the job's error", async () => {
    const file = join(runner.backupDir, backup.fileName);
    renameSync(file, `${file}.moved`);
    try {
      const dl = await api<Download>("POST", `/api/v1/backups/${backup.id}/download`, {});
      const res = await fetch(dl.url);
      // RELAY_FAILED (not the 4 s RELAY_TIMEOUT this cluster is set to): the job's failure reached the relay.
      expect(res.status).toBe(502);
      const err = (await res.json()) as {
        error: { code: string; message: string; job: { id: string; code: string } };
      };
      expect(err.error.code).toBe("RELAY_FAILED");
      expect(err.error.job).toEqual({ id: dl.jobId, code: "NOT_FOUND" });
      expect(err.error.message).toContain(backup.fileName);
      const j = await waitForJobEnd(cluster, dl.jobId);
      expect(j.state).toBe("FAILED");
      expect(j.error?.code).toBe("NOT_FOUND");
      // The link is spent: asking again gives the same answer, not a second wait.
      const again = await fetch(dl.url);
      expect(again.status).toBe(502);
      expect((await errorOf(again)).code).toBe("RELAY_FAILED");
      const relayId = new URL(dl.url).pathname.split("/").pop()!;
      const log = await api<{
        items: { status: string; target: { id: string } | null; details: Record<string, unknown> }[];
      }>("GET", "/api/v1/activity?operation=backup.download.relay&limit=50");
      const row = log.items.find((r) => r.target?.id === relayId);
      expect(row).toMatchObject({ status: "failure", details: { jobId: dl.jobId, error: "NOT_FOUND" } });
    } finally {
      renameSync(`${file}.moved`, file);
    }
  });

  it("an offline runner is a clear 409 RUNNER_OFFLINE at once, not a hanging download", async () => {
    await runner.stop();
    await waitFor("runner offline", async () => {
      const list = await cluster.api.listRunners();
      return list.find((x) => x.id === runnerId && x.status === "offline");
    });
    await expect(api("POST", `/api/v1/backups/${backup.id}/download`, {})).rejects.toMatchObject({
      status: 409,
      code: "RUNNER_OFFLINE",
    });
  });
});
