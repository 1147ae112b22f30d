/**
 * Sync pause / resume end to end: the real Worker, a real `cairn-runner` process and s3rver. The pause
 * travels as `job.cancel` with mode "pause" over the runner's WebSocket; the resumed job sends only
 * the parts s3rver does not hold, and the copy ends byte-identical.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { S3Destination } from "../../runner/src/destinations/s3";
import { s3SpecSchema } from "../../runner/src/destinations/url";
import { openUploads, startS3Server, type TestS3Server } from "../destinations/s3-server";
import type { BackupView, CopyView } from "../support/api-views";
import {
  type Cluster,
  type RunnerHandle,
  startCluster,
  startOnlineRunner,
  waitFor,
  waitForJobEnd,
} from "../support/cluster";

// The runner's default: the resumed job must skip exactly the parts it finished.
const PART = s3SpecSchema.shape.partSize.parse(undefined);
const PREFIX = "resume";

let cluster: Cluster;
let runner: RunnerHandle;
let s3: TestS3Server;
let runnerId: string;

const api = <T>(method: string, path: string, body?: unknown) => cluster.api.request<T>(method, path, body);
const s3At = () =>
  new S3Destination({
    type: "s3",
    bucket: "e2e",
    prefix: PREFIX,
    endpoint: s3.endpoint,
    region: "us-east-1",
    pathStyle: true,
    credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
    partSize: PART,
    queueSize: 4,
  });

async function uploads(): Promise<string[]> {
  const d = s3At();
  try {
    return (await openUploads(d.spec)).map((u) => u.uploadId);
  } finally {
    await d.close();
  }
}

beforeAll(async () => {
  [cluster, s3] = await Promise.all([startCluster(), startS3Server(["e2e"])]);
  const source = join(cluster.dir, "site");
  mkdirSync(source, { recursive: true });
  // Incompressible, so the archive spans more than two parts.
  writeFileSync(join(source, "big.bin"), randomBytes(4 * PART + 77));
  ({ runner, runnerId } = await startOnlineRunner(
    cluster,
    "resume-1",
    [source],
    ["--allowed-root", cluster.dir],
  ));
}, 120_000);

afterAll(async () => {
  await runner?.stop();
  await Promise.all([cluster?.close(), s3?.close()]);
});

describe("sync pause / resume end to end", () => {
  it("pause keeps the uploaded parts, resume sends only the rest, the copy is byte-identical", async () => {
    const created = await api<{ backup: { id: string }; job: { id: string } }>("POST", "/api/v1/backups", {
      runnerId,
      name: "site",
      encryption: { mode: "none" },
    });
    const bj = await waitForJobEnd(cluster, created.job.id);
    expect(bj.state, JSON.stringify(bj)).toBe("SUCCEEDED");
    const b = await api<BackupView>("GET", `/api/v1/backups/${created.backup.id}`);
    expect(b.size).toBeGreaterThan(3 * PART);
    const dest = await api<{ id: string }>("POST", "/api/v1/destinations", {
      name: "resumable",
      kind: "s3",
      config: { bucket: "e2e", prefix: PREFIX, endpoint: s3.endpoint, pathStyle: true },
      credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
    });

    await s3.setPartFaults({ holdAbove: 2 });
    const sync = await api<{ job: { id: string } }>("POST", `/api/v1/backups/${b.id}/sync`, {
      destinationId: dest.id,
    });
    const key = `${PREFIX}/${b.fileName}`;
    const d = s3At();
    try {
      await waitFor(
        "two parts stored and one held",
        async () => {
          const [id] = await uploads();
          const parts = id ? await d.listParts(key, id) : null;
          return (parts?.size ?? 0) >= 2 && (await s3.partStats()).held > 0;
        },
        60_000,
        100,
      );
    } finally {
      await d.close();
    }
    const paused = await api<{ copy: CopyView }>(
      "POST",
      `/api/v1/backups/${b.id}/copies/${dest.id}/pause`,
      {},
    );
    expect(paused.copy.status).toBe("paused");
    const pj = await waitForJobEnd(cluster, sync.job.id);
    expect(pj).toMatchObject({ state: "CANCELLED", error: { code: "PAUSED" } });
    const mid = await api<BackupView>("GET", `/api/v1/backups/${b.id}`);
    expect(mid.copies.find((c) => c.destinationId === dest.id)).toMatchObject({ status: "paused" });
    expect(await uploads()).toHaveLength(1);

    await s3.setPartFaults({});
    const before = await s3.partStats();
    const resumed = await api<{ job: { id: string } }>(
      "POST",
      `/api/v1/backups/${b.id}/copies/${dest.id}/resume`,
      {},
    );
    const rj = await waitForJobEnd(cluster, resumed.job.id);
    expect(rj.state, JSON.stringify(rj)).toBe("SUCCEEDED");
    expect(rj.result).toMatchObject({ resumedBytes: 2 * PART, sha256: b.sha256 });
    const after = await s3.partStats();
    expect(after.partBytes - before.partBytes).toBe(b.size - 2 * PART);
    const done = await api<BackupView>("GET", `/api/v1/backups/${b.id}`);
    expect(done.copies.find((c) => c.destinationId === dest.id)).toMatchObject({
      status: "completed",
      sha256: b.sha256,
      bytesDone: b.size,
    });
    const h = createHash("sha256");
    const r = s3At();
    try {
      for await (const c of await r.createReadStream(b.fileName)) h.update(c as Buffer);
    } finally {
      await r.close();
    }
    expect(h.digest("hex")).toBe(b.sha256);
    expect(await uploads()).toEqual([]);
  });
});
