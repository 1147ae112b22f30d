import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalDestination } from "../destinations/local";
import { RangeSpool, sweepStaleSpools } from "./range-spool";

/** A local destination that counts the bytes it serves (the "network"). */
class Counting extends LocalDestination {
  served = 0;
  requests: string[] = [];
  constructor(
    dir: string,
    readonly ranges = true,
  ) {
    super(dir);
    (this as { supportsRanges: boolean }).supportsRanges = ranges;
  }
  override async createReadStream(name: string, range?: { start: number; end?: number }) {
    if (!this.ranges && range) throw new Error("ranges not supported");
    this.requests.push(range ? `${range.start}-${range.end ?? ""}` : "all");
    const s = await super.createReadStream(name, range);
    s.on("data", (c: Buffer) => (this.served += c.length));
    return s;
  }
}

/** SHA-256 of everything read (vitest's deep equality on large Buffers is slow). */
async function all(s: Readable): Promise<string> {
  const h = createHash("sha256");
  for await (const c of s) h.update(c as Buffer);
  return h.digest("hex");
}
const of = (b: Buffer) => createHash("sha256").update(b).digest("hex");

let dir: string;
const data = randomBytes(300_000);

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "cairn-spool-"));
  await writeFile(path.join(dir, "a.bin"), data);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("RangeSpool", () => {
  it("fetches each byte once: overlapping reads are stitched from the spool and the remote's gaps", async () => {
    const remote = new Counting(dir);
    const spool = new RangeSpool(remote, path.join(dir, "spool1"));
    expect(await all(await spool.createReadStream("a.bin", { start: 1000, end: 1999 }))).toBe(
      of(data.subarray(1000, 2000)),
    );
    expect(await all(await spool.createReadStream("a.bin", { start: 5000, end: 5999 }))).toBe(
      of(data.subarray(5000, 6000)),
    );
    // Spans both spooled runs and the gaps around them; open-ended to the end of the object.
    expect(await all(await spool.createReadStream("a.bin", { start: 500 }))).toBe(of(data.subarray(500)));
    expect(remote.requests).toEqual(["1000-1999", "5000-5999", "500-999", "2000-4999", "6000-299999"]);
    expect(remote.served).toBe(data.length - 500);
    expect(spool.bytesFetched).toBe(data.length - 500);
    // A second pass is served from disk alone.
    expect(await all(await spool.createReadStream("a.bin", { start: 700, end: 250_000 }))).toBe(
      of(data.subarray(700, 250_001)),
    );
    expect(remote.served).toBe(data.length - 500);
    expect(spool.archiveBytes("a.bin")).toBe(data.length);
    await spool.close();
    expect(existsSync(path.join(dir, "spool1"))).toBe(false);
  });

  it("a reader that stops early keeps what was fetched; a later read fetches only the rest", async () => {
    const remote = new Counting(dir);
    const spool = new RangeSpool(remote, path.join(dir, "spool2"));
    const s = await spool.createReadStream("a.bin", { start: 0 });
    let got = 0;
    for await (const c of s) {
      got += (c as Buffer).length;
      if (got >= 1) break;
    }
    expect(await all(await spool.createReadStream("a.bin"))).toBe(of(data));
    // What the first reader took stays spooled; the second read fetches only the rest.
    expect(spool.bytesFetched).toBe(data.length);
    await spool.close();
  });

  it("a destination without ranges is fetched whole, once", async () => {
    const remote = new Counting(dir, false);
    const spool = new RangeSpool(remote, path.join(dir, "spool3"));
    expect(await all(await spool.createReadStream("a.bin", { start: 10, end: 19 }))).toBe(
      of(data.subarray(10, 20)),
    );
    expect(await all(await spool.createReadStream("a.bin", { start: 200_000 }))).toBe(
      of(data.subarray(200_000)),
    );
    expect(remote.requests).toEqual(["all"]);
    expect(remote.served).toBe(data.length);
    await spool.close();
  });

  it("two objects opened at the same time get their own spool files", async () => {
    const other = randomBytes(200_000);
    await writeFile(path.join(dir, "b.bin"), other);
    const spool = new RangeSpool(new Counting(dir), path.join(dir, "spool6"));
    const [a, b] = await Promise.all([
      spool.createReadStream("a.bin").then(all),
      spool.createReadStream("b.bin").then(all),
    ]);
    expect(a).toBe(of(data));
    expect(b).toBe(of(other));
    // Served again from the spool: each object's bytes are still its own.
    expect(await all(await spool.createReadStream("a.bin"))).toBe(of(data));
    expect(await all(await spool.createReadStream("b.bin"))).toBe(of(other));
    expect((await readdir(path.join(dir, "spool6"))).sort()).toEqual(["0.spool", "1.spool"]);
    await spool.close();
  });

  it("a failed stat is not remembered: the next read asks the remote again", async () => {
    const remote = new Counting(dir);
    const real = remote.stat.bind(remote);
    let fail = true;
    remote.stat = async (name: string) => {
      if (fail) throw Object.assign(new Error("connection reset"), { code: "CONNECTION_FAILED" });
      return real(name);
    };
    const spool = new RangeSpool(remote, path.join(dir, "spool7"));
    await expect(spool.createReadStream("a.bin")).rejects.toMatchObject({ code: "CONNECTION_FAILED" });
    fail = false;
    expect(await all(await spool.createReadStream("a.bin", { start: 0, end: 99 }))).toBe(
      of(data.subarray(0, 100)),
    );
    await spool.close();
  });

  it("a missing object is NOT_FOUND, stat is null, and the spool refuses writes", async () => {
    const spool = new RangeSpool(new Counting(dir), path.join(dir, "spool4"));
    expect(await spool.stat("nope.bin")).toBeNull();
    await expect(spool.createReadStream("nope.bin")).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(spool.createWriter()).rejects.toMatchObject({ code: "PROTOCOL_ERROR" });
    await spool.close();
    expect(existsSync(path.join(dir, "spool4"))).toBe(false);
  });

  it("a full disk under the spool is NO_SPACE naming the spool, not a bare ENOSPC", async (t) => {
    // A 64 KiB tmpfs is a real full disk; mounting one needs root (CAP_SYS_ADMIN).
    const small = path.join(dir, "small");
    await mkdir(small);
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", small], { stdio: "pipe" });
    } catch (e) {
      console.log(`skipped: cannot mount a tmpfs here (${(e as Error).message.split("\n")[0]})`);
      t.skip();
    }
    try {
      const spool = new RangeSpool(new Counting(dir), path.join(small, "spool5"));
      const err = await spool
        .createReadStream("a.bin")
        .then(all, (e: unknown) => e)
        .catch((e: unknown) => e);
      await spool.close();
      expect(err).toMatchObject({ code: "NO_SPACE", message: expect.stringContaining("restore spool") });
    } finally {
      execFileSync("umount", [small]);
    }
  });

  it("sweeps spools nothing wrote to for a day, keeps a live one", async () => {
    const parent = path.join(dir, "spools");
    const old = new Date(Date.now() - 25 * 3600_000);
    await mkdir(path.join(parent, "job_dead"), { recursive: true });
    await writeFile(path.join(parent, "job_dead", "0.spool"), "x");
    await utimes(path.join(parent, "job_dead", "0.spool"), old, old);
    await utimes(path.join(parent, "job_dead"), old, old);
    await mkdir(path.join(parent, "job_live"), { recursive: true });
    await writeFile(path.join(parent, "job_live", "0.spool"), "x");
    // Old directory, but its file is being written: live.
    await utimes(path.join(parent, "job_live"), old, old);
    expect(await sweepStaleSpools(parent, 24 * 3600_000)).toEqual(["job_dead"]);
    expect(existsSync(path.join(parent, "job_dead"))).toBe(false);
    expect(existsSync(path.join(parent, "job_live", "0.spool"))).toBe(true);
    expect(await sweepStaleSpools(path.join(dir, "no-such-dir"), 1)).toEqual([]);
  });

  it("a spool a running restore only reads from (no writes for a day) is not swept", async () => {
    const parent = path.join(dir, "spools-reading");
    const spool = new RangeSpool(new Counting(dir), path.join(parent, "job_reading"));
    expect(await all(await spool.createReadStream("a.bin", { start: 0, end: 999 }))).toBe(
      of(data.subarray(0, 1000)),
    );
    const old = new Date(Date.now() - 25 * 3600_000);
    await utimes(path.join(parent, "job_reading", "0.spool"), old, old);
    await utimes(path.join(parent, "job_reading"), old, old);
    // Another read, served from the spool alone: the restore is alive.
    expect(await all(await spool.createReadStream("a.bin", { start: 10, end: 99 }))).toBe(
      of(data.subarray(10, 100)),
    );
    expect(await sweepStaleSpools(parent, 24 * 3600_000)).toEqual([]);
    expect(existsSync(path.join(parent, "job_reading", "0.spool"))).toBe(true);
    await spool.close();
  });
});
