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
import { openUploads, startS3Server, type TestS3Server } from "../destinations/s3-server";
import {
  type Cluster,
  type RunnerHandle,
  enrollAndStartRunner,
  startCluster,
  waitFor,
} from "../support/cluster";

const MiB = 1024 * 1024;
const PART = 8 * MiB; // the runner's default part size
const PREFIX = "resume";

let cluster: Cluster;
let runner: RunnerHandle;
let s3: TestS3Server;
let runnerId: string;

interface Job {
  id: string;
  state: string;
  error?: { code: string; message: string };
  result?: Record<string, unknown>;
}
interface Copy {
  destinationId: string;
  status: string;
  jobId: string;
  sha256: string | null;
  bytesDone: number;
}
interface Backup {
  id: string;
  status: string;
  fileName: string;
  size: number;
  sha256: string;
  copies: Copy[];
}

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

async function finished(jobId: string): Promise<Job> {
  return waitFor(
    `job ${jobId} to finish`,
    async () => {
      const j = await api<Job>("GET", `/api/v1/jobs/${jobId}`);
      return ["SUCCEEDED", "FAILED", "INTERRUPTED", "CANCELLED"].includes(j.state) ? j : undefined;
    },
    90_000,
    200,
  );
}

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
  // Incompressible, so the archive spans more than two 8 MiB parts.
  writeFileSync(join(source, "big.bin"), randomBytes(4 * PART + 77));
  runner = await enrollAndStartRunner(cluster, "resume-1", [source], ["--allowed-root", cluster.dir]);
  runnerId = await waitFor("runner online", async () => {
    const list = await cluster.api.listRunners();
    return list.find((x) => x.name === "resume-1" && x.status === "online")?.id;
  });
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
    const bj = await finished(created.job.id);
    expect(bj.state, JSON.stringify(bj)).toBe("SUCCEEDED");
    const b = await api<Backup>("GET", `/api/v1/backups/${created.backup.id}`);
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
    const paused = await api<{ copy: Copy }>("POST", `/api/v1/backups/${b.id}/copies/${dest.id}/pause`, {});
    expect(paused.copy.status).toBe("paused");
    const pj = await finished(sync.job.id);
    expect(pj).toMatchObject({ state: "CANCELLED", error: { code: "PAUSED" } });
    const mid = await api<Backup>("GET", `/api/v1/backups/${b.id}`);
    expect(mid.copies.find((c) => c.destinationId === dest.id)).toMatchObject({ status: "paused" });
    expect(await uploads()).toHaveLength(1);

    await s3.setPartFaults({});
    const before = await s3.partStats();
    const resumed = await api<{ job: { id: string } }>(
      "POST",
      `/api/v1/backups/${b.id}/copies/${dest.id}/resume`,
      {},
    );
    const rj = await finished(resumed.job.id);
    expect(rj.state, JSON.stringify(rj)).toBe("SUCCEEDED");
    expect(rj.result).toMatchObject({ resumedBytes: 2 * PART, sha256: b.sha256 });
    const after = await s3.partStats();
    expect(after.partBytes - before.partBytes).toBe(b.size - 2 * PART);
    const done = await api<Backup>("GET", `/api/v1/backups/${b.id}`);
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
