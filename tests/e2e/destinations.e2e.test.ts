/**
 * End to end with remote storage: the real Worker, a real `cairn-runner` process and a real s3rver.
 * Destinations are configured through the API, tested by a job, used for auto-sync and a later sync,
 * downloaded through a presigned URL and restored from by the CLI; wrong keys fail visibly.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeTree } from "../../runner/src/archive/test-helpers";
import { S3Destination } from "../../runner/src/destinations/s3";
import { startS3Server, type TestS3Server } from "../destinations/s3-server";
import { startFtpServer, type TestFtpServer } from "../destinations/ftp-server";
import { startFakeDrive, type FakeDrive } from "../destinations/fake-gdrive-server";
import { sshdUnavailable, startSshd, type TestSshd } from "../destinations/sshd";
import type { BackupView } from "../support/api-views";
import {
  type Cluster,
  type RunnerHandle,
  runCli,
  startCluster,
  startOnlineRunner,
  waitForJobEnd,
} from "../support/cluster";

const PASSWORD = "e2e Remote-Storage 42!";
// Fresh literals: the AWS SDK tags credential objects it has used.
const goodKeys = () => ({ accessKeyId: "S3RVER", secretAccessKey: "S3RVER" });

let cluster: Cluster;
let runner: RunnerHandle;
let s3: TestS3Server;
let ftp: TestFtpServer;
let drive: FakeDrive;
let sshd: TestSshd | undefined;
const noSshd = sshdUnavailable();
if (noSshd) console.warn(`sftp destination skipped in the e2e fan-out: ${noSshd}`);
let source: string;
let runnerId: string;

const api = <T>(method: string, path: string, body?: unknown) => cluster.api.request<T>(method, path, body);

async function createS3Destination(name: string, prefix: string, credentials: Record<string, string>) {
  return api<{ id: string; hasCredentials: boolean }>("POST", "/api/v1/destinations", {
    name,
    kind: "s3",
    config: { bucket: "e2e", prefix, endpoint: s3.endpoint, pathStyle: true },
    credentials,
  });
}

const s3At = (prefix: string) =>
  new S3Destination({
    type: "s3",
    bucket: "e2e",
    prefix,
    endpoint: s3.endpoint,
    region: "us-east-1",
    pathStyle: true,
    credentials: goodKeys(),
    partSize: 5 * 1024 * 1024,
    queueSize: 2,
  });

async function objectDigest(prefix: string, name: string) {
  const h = createHash("sha256");
  let size = 0;
  for await (const c of await s3At(prefix).createReadStream(name)) {
    h.update(c as Buffer);
    size += (c as Buffer).length;
  }
  return { size, sha256: h.digest("hex") };
}

beforeAll(async () => {
  [cluster, s3, ftp, drive] = await Promise.all([
    startCluster(),
    startS3Server(["e2e"]),
    // Plain FTP here: ftp-srv in this process intermittently breaks the AUTH TLS upgrade for a client in
    // another process ("wrong version number"); FTPS is covered in-process by the runner's job tests.
    startFtpServer({ tls: false }),
    startFakeDrive(),
  ]);
  if (!noSshd) sshd = await startSshd();
  source = join(cluster.dir, "site");
  mkdirSync(join(source, "uploads"), { recursive: true });
  writeFileSync(join(source, "index.html"), "<h1>remote</h1>\n");
  writeFileSync(join(source, "uploads", "big.bin"), randomBytes(6 * 1024 * 1024 + 11));
  for (let i = 0; i < 30; i++) writeFileSync(join(source, `p${i}.txt`), `page ${i}\n`.repeat(i + 1));
  ({ runner, runnerId } = await startOnlineRunner(
    cluster,
    "dest-1",
    [source],
    ["--allowed-root", cluster.dir],
  ));
}, 120_000);

afterAll(async () => {
  await runner?.stop();
  await Promise.all([cluster?.close(), s3?.close(), ftp?.close(), drive?.close(), sshd?.close()]);
});

describe("remote destinations end to end", () => {
  it("test connection, auto-sync backup, later sync, presigned download and restore from S3", async () => {
    const dest = await createS3Destination("offsite", "cairn", goodKeys());
    expect(dest.hasCredentials).toBe(true);

    const test = await api<{ job: { id: string } }>("POST", `/api/v1/destinations/${dest.id}/test`, {
      runnerId,
    });
    const tj = await waitForJobEnd(cluster, test.job.id);
    expect(tj.state, JSON.stringify(tj)).toBe("SUCCEEDED");
    const tested = await api<{ lastTest: { status: string } }>("GET", `/api/v1/destinations/${dest.id}`);
    expect(tested.lastTest.status).toBe("ok");

    const created = await api<{ backup: { id: string }; job: { id: string } }>("POST", "/api/v1/backups", {
      runnerId,
      name: "site",
      encryption: { mode: "password", password: PASSWORD },
      destinations: [dest.id],
    });
    const bj = await waitForJobEnd(cluster, created.job.id);
    expect(bj.state, JSON.stringify(bj)).toBe("SUCCEEDED");
    const b = await api<BackupView>("GET", `/api/v1/backups/${created.backup.id}`);
    expect(b.status).toBe("completed");
    expect(b.copies).toHaveLength(1);
    expect(b.copies[0]).toMatchObject({
      destinationId: dest.id,
      status: "completed",
      objectName: b.fileName,
      size: b.size,
      sha256: b.sha256,
      bytesDone: b.size,
    });
    // The bytes in s3rver are the backup's bytes, and equal the runner's local archive.
    expect(await objectDigest("cairn", b.fileName)).toEqual({ size: b.size, sha256: b.sha256 });
    const local = readFileSync(join(runner.backupDir, b.fileName));
    expect(createHash("sha256").update(local).digest("hex")).toBe(b.sha256);

    // Later sync of the same backup to a second destination, verified by the runner after upload.
    const later = await createS3Destination("later", "later/copies", goodKeys());
    const sync = await api<{ job: { id: string } }>("POST", `/api/v1/backups/${b.id}/sync`, {
      destinationId: later.id,
    });
    const sj = await waitForJobEnd(cluster, sync.job.id);
    expect(sj.state, JSON.stringify(sj)).toBe("SUCCEEDED");
    expect(sj.progress).toMatchObject({ bytes: b.size, totalBytes: b.size });
    const afterSync = await api<BackupView>("GET", `/api/v1/backups/${b.id}`);
    expect(afterSync.copies.find((c) => c.destinationId === later.id)).toMatchObject({
      status: "completed",
      size: b.size,
      sha256: b.sha256,
    });
    expect(await objectDigest("later/copies", b.fileName)).toEqual({ size: b.size, sha256: b.sha256 });

    // Download: a presigned URL that s3rver honours, computed in the Worker.
    const dl = await api<{ url: string; sha256: string }>("POST", `/api/v1/backups/${b.id}/download`, {
      destinationId: dest.id,
    });
    expect(new URL(dl.url).searchParams.get("X-Amz-Expires")).toBe("300");
    const res = await fetch(dl.url);
    expect(res.status).toBe(200);
    const body = Buffer.from(await res.arrayBuffer());
    expect(createHash("sha256").update(body).digest("hex")).toBe(b.sha256);

    // Restore from the remote copy with the CLI (no control plane needed for a disaster).
    writeFileSync(join(cluster.dir, "pw"), `${PASSWORD}\n`);
    const target = join(cluster.dir, "restored");
    const r = await runCli(
      [
        "restore",
        `s3://e2e/cairn/${b.fileName}`,
        "--target",
        target,
        "--password-file",
        join(cluster.dir, "pw"),
        "--s3-endpoint",
        s3.endpoint,
        "--s3-path-style",
      ],
      { env: { AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER" } },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(describeTree(join(target, "site"))).toEqual(describeTree(source));

    // Through the API with the local archive gone: verify and restore read the S3 copy.
    rmSync(join(runner.backupDir, b.fileName));
    const localVerify = await api<{ job: { id: string } }>("POST", `/api/v1/backups/${b.id}/verify`, {
      password: PASSWORD,
    });
    expect((await waitForJobEnd(cluster, localVerify.job.id)).state).toBe("FAILED");
    const remoteVerify = await api<{ job: { id: string } }>("POST", `/api/v1/backups/${b.id}/verify`, {
      password: PASSWORD,
      destinationId: later.id,
    });
    const vj = await waitForJobEnd(cluster, remoteVerify.job.id);
    expect(vj.state, JSON.stringify(vj)).toBe("SUCCEEDED");
    const apiTarget = join(cluster.dir, "api-restored");
    const restore = await api<{ job: { id: string } }>("POST", `/api/v1/backups/${b.id}/restore`, {
      target: apiTarget,
      password: PASSWORD,
      destinationId: dest.id,
    });
    const rj = await waitForJobEnd(cluster, restore.job.id);
    expect(rj.state, JSON.stringify(rj)).toBe("SUCCEEDED");
    expect(describeTree(join(apiTarget, "site"))).toEqual(describeTree(source));
  });

  it("wrong credentials: the test job fails with AUTH_FAILED, visible in the API and the activity log", async () => {
    const secret = "definitely-wrong-secret";
    const bad = await createS3Destination("bad-keys", "bad", {
      accessKeyId: "NOT-A-KEY",
      secretAccessKey: secret,
    });
    const test = await api<{ job: { id: string } }>("POST", `/api/v1/destinations/${bad.id}/test`, {
      runnerId,
    });
    const j = await waitForJobEnd(cluster, test.job.id);
    expect(j.state).toBe("FAILED");
    expect(j.error?.code).toBe("AUTH_FAILED");
    expect(JSON.stringify(j)).not.toContain(secret);
    const d = await api<{ lastTest: { status: string; error: string } }>(
      "GET",
      `/api/v1/destinations/${bad.id}`,
    );
    expect(d.lastTest.status).toBe("failed");
    expect(d.lastTest.error).toMatch(/^AUTH_FAILED: /);
    const acts = await api<{
      items: { operation: string; target: { id: string } | null; details: unknown }[];
    }>("GET", "/api/v1/activity?limit=50&operation=destination.test.finish");
    const row = acts.items.find((a) => a.target?.id === bad.id);
    expect(row).toBeDefined();
    expect(JSON.stringify(row!.details)).toContain("AUTH_FAILED");
    expect(JSON.stringify(acts)).not.toContain(secret);

    // A backup whose only copy target has wrong keys: the local archive completes, the copy fails.
    const created = await api<{ backup: { id: string }; job: { id: string } }>("POST", "/api/v1/backups", {
      runnerId,
      name: "site-bad-copy",
      destinations: [bad.id],
    });
    const bj = await waitForJobEnd(cluster, created.job.id);
    expect(bj.state).toBe("SUCCEEDED");
    const b = await api<BackupView>("GET", `/api/v1/backups/${created.backup.id}`);
    expect(b.status).toBe("completed");
    expect(b.copies[0]).toMatchObject({ status: "failed", error: { code: "AUTH_FAILED" } });
  });

  it("auto-sync to FTP, SFTP and Google Drive at once; verify and restore read each copy", async () => {
    mkdirSync(join(ftp.root, "backups"), { recursive: true });
    const ids: Record<string, string> = {};
    const make = async (name: string, kind: string, config: unknown, credentials: unknown) =>
      (ids[name] = (
        await api<{ id: string }>("POST", "/api/v1/destinations", { name, kind, config, credentials })
      ).id);
    await make(
      "ftp",
      "ftp",
      { host: "127.0.0.1", port: ftp.port, user: ftp.user, path: "/backups" },
      { password: ftp.password },
    );
    await make(
      "drive",
      "gdrive",
      {
        folderId: drive.rootId,
        apiBase: drive.apiBase,
        uploadBase: drive.uploadBase,
        tokenUrl: drive.tokenUrl,
      },
      { clientId: drive.clientId, clientSecret: drive.clientSecret, refreshToken: drive.refreshToken },
    );
    if (sshd) {
      mkdirSync(join(sshd.dir, "backups"), { recursive: true });
      await make(
        "sftp",
        "sftp",
        { host: "127.0.0.1", port: sshd.port, user: sshd.user, path: join(sshd.dir, "backups") },
        { privateKey: readFileSync(sshd.userKey, "utf8") },
      );
    }
    const created = await api<{ backup: { id: string }; job: { id: string } }>("POST", "/api/v1/backups", {
      runnerId,
      name: "site-multi",
      destinations: Object.values(ids),
    });
    const bj = await waitForJobEnd(cluster, created.job.id);
    expect(bj.state, JSON.stringify(bj)).toBe("SUCCEEDED");
    const b = await api<BackupView>("GET", `/api/v1/backups/${created.backup.id}`);
    expect(b.copies).toHaveLength(Object.keys(ids).length);
    for (const c of b.copies)
      expect(c, JSON.stringify(c)).toMatchObject({ status: "completed", size: b.size, sha256: b.sha256 });
    // The FTP copy on the server's disk is the archive, byte for byte.
    const onFtp = readFileSync(join(ftp.root, "backups", b.fileName));
    expect(createHash("sha256").update(onFtp).digest("hex")).toBe(b.sha256);

    rmSync(join(runner.backupDir, b.fileName));
    for (const [name, id] of Object.entries(ids)) {
      const v = await api<{ job: { id: string } }>("POST", `/api/v1/backups/${b.id}/verify`, {
        destinationId: id,
      });
      const vj = await waitForJobEnd(cluster, v.job.id);
      expect(vj.state, `${name}: ${JSON.stringify(vj)}`).toBe("SUCCEEDED");
    }
    const target = join(cluster.dir, "multi-restored");
    const restore = await api<{ job: { id: string } }>("POST", `/api/v1/backups/${b.id}/restore`, {
      target,
      destinationId: ids.sftp ?? ids.drive,
    });
    const rj = await waitForJobEnd(cluster, restore.job.id);
    expect(rj.state, JSON.stringify(rj)).toBe("SUCCEEDED");
    expect(describeTree(join(target, "site"))).toEqual(describeTree(source));
  });
});
