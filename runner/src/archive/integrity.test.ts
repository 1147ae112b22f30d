import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createHash, randomBytes } from "node:crypto";
import { join } from "node:path";
import { createBackup, restoreArchive, verifyArchive, openArchive } from "./index";
import { BINDING, makeTree, tempDir } from "./test-helpers";
import { ENC_MAGIC, checkScryptParams } from "./crypto";
import { manifestFileName } from "./manifest";

const PW = "Correct-Horse-9!battery";
const LIMITS = { maxLogN: 22, minLogN: 10, maxR: 32, maxP: 16 };
const key = { mode: "password" as const, password: PW };
let root: string;
let archive: string;
let plainArchive: string;
let bounds: number[];
let plainBounds: number[];

beforeAll(async () => {
  root = tempDir();
  const src = join(root, "data");
  mkdirSync(src);
  makeTree(src, { bigBytes: 200 * 1024 });
  const r = await createBackup({
    sources: [src],
    outDir: join(root, "enc"),
    name: "w",
    kind: "full",
    level: 3,
    encryption: { mode: "password", password: PW },
    binding: BINDING,
    chunkSize: 64 * 1024,
    scrypt: { N: 1024, r: 8, p: 1 },
  });
  archive = r.path;
  const p = await createBackup({
    sources: [src],
    outDir: join(root, "plain"),
    name: "w",
    kind: "full",
    level: 3,
    encryption: { mode: "none" },
    binding: BINDING,
    chunkSize: 64 * 1024,
  });
  plainArchive = p.path;
  const h = await openArchive({ source: archive, key, scryptLimits: LIMITS });
  bounds = [...h.frameOffsets, h.expectedSize];
  const hp = await openArchive({ source: plainArchive, key: { mode: "none" } });
  plainBounds = [...hp.frameOffsets, hp.expectedSize];
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Copies archive + manifest into a fresh dir, applies `mutate` to the archive bytes. */
function variant(src: string, mutate: (b: Buffer) => Buffer): string {
  const d = tempDir();
  const name = src.split("/").pop()!;
  writeFileSync(join(d, name), mutate(readFileSync(src)));
  copyFileSync(`${src}.manifest`, join(d, manifestFileName(name)));
  return join(d, name);
}

async function codeOf(path: string, k: Parameters<typeof verifyArchive>[0]["key"] = key): Promise<string> {
  const target = tempDir();
  try {
    await restoreArchive({ source: path, target, key: k, scryptLimits: LIMITS });
    return "OK";
  } catch (e) {
    expect(readdirSync(target)).toEqual([]); // nothing released into the target
    return (e as { code: string }).code;
  } finally {
    rmSync(target, { recursive: true, force: true });
    rmSync(join(path, ".."), { recursive: true, force: true });
  }
}

describe("encrypted archive integrity", () => {
  it("has several segments to attack", () => expect(bounds.length).toBeGreaterThan(6));

  it("truncation at every segment boundary and mid-segment -> TRUNCATED", async () => {
    const cuts = new Set<number>();
    for (let i = 0; i < bounds.length - 1; i++) {
      cuts.add(bounds[i]!);
      cuts.add(bounds[i]! + Math.floor((bounds[i + 1]! - bounds[i]!) / 2));
    }
    cuts.add(bounds[bounds.length - 1]! - 1);
    cuts.add(5);
    for (const cut of cuts)
      expect([cut, await codeOf(variant(archive, (b) => b.subarray(0, cut)))]).toEqual([cut, "TRUNCATED"]);
  });

  it("bit flips in the header, a body segment, a length field and the last segment -> CORRUPT", async () => {
    const flips = [
      20,
      bounds[1]! + 40,
      bounds[3]! + 1,
      bounds[bounds.length - 2]! + 10,
      bounds[bounds.length - 1]! - 1,
    ];
    for (const at of flips) {
      expect([
        at,
        await codeOf(
          variant(archive, (b) => {
            const c = Buffer.from(b);
            c[at]! ^= 0x04;
            return c;
          }),
        ),
      ]).toEqual([at, "CORRUPT"]);
    }
  });

  it("swapped and duplicated segments -> CORRUPT", async () => {
    const seg = (b: Buffer, i: number) => b.subarray(bounds[i]!, bounds[i + 1]!);
    const swapped = variant(archive, (b) =>
      Buffer.concat([b.subarray(0, bounds[2]!), seg(b, 3), seg(b, 2), b.subarray(bounds[4]!)]),
    );
    expect(await codeOf(swapped)).toBe("CORRUPT");
    const dup = variant(archive, (b) =>
      Buffer.concat([b.subarray(0, bounds[3]!), seg(b, 2), b.subarray(bounds[3]!)]),
    );
    expect(await codeOf(dup)).toBe("CORRUPT");
    const trailing = variant(archive, (b) => Buffer.concat([b, Buffer.from("x")]));
    expect(await codeOf(trailing)).toBe("CORRUPT");
  });

  it("wrong password -> WRONG_KEY with nothing released", async () => {
    expect(
      await codeOf(
        variant(archive, (b) => b),
        { mode: "password", password: "Wrong-Password-1!" },
      ),
    ).toBe("WRONG_KEY");
    expect(
      await codeOf(
        variant(archive, (b) => b),
        { mode: "panel", dataKey: randomBytes(32) },
      ),
    ).toBe("WRONG_KEY");
  });

  it("absurd KDF parameters are refused before any KDF work", async () => {
    for (const params of [{ N: 2 ** 30 }, { r: 1000 }, { p: 1000 }, { N: 1000 }]) {
      const path = variant(archive, (b) => {
        const len = b.readUInt32BE(10);
        const json = JSON.parse(b.subarray(14, 14 + len).toString());
        Object.assign(json.kdf, params);
        const body = Buffer.from(JSON.stringify(json));
        const fixed = Buffer.from(b.subarray(0, 14));
        fixed.writeUInt32BE(body.length, 10);
        const pre = Buffer.concat([fixed, body]);
        return Buffer.concat([pre, createHash("sha256").update(pre).digest(), b.subarray(14 + len + 32)]);
      });
      const kdf = vi.fn(async () => Buffer.alloc(32));
      await expect(verifyArchive({ source: path, key, kdf })).rejects.toMatchObject({ code: "CORRUPT" });
      expect(kdf).not.toHaveBeenCalled();
      rmSync(join(path, ".."), { recursive: true, force: true });
    }
    expect(() => checkScryptParams({ N: 2 ** 17, r: 8, p: 1 })).not.toThrow();
  });

  it("restoring under another backup id or tenant is refused", async () => {
    for (const binding of [
      { ...BINDING, backupId: "bk_other" },
      { ...BINDING, tenantId: "tn_other" },
      { ...BINDING, parentId: "bk_0" },
    ]) {
      const target = tempDir();
      await expect(
        restoreArchive({ source: archive, target, key, binding, scryptLimits: LIMITS }),
      ).rejects.toMatchObject({ code: "CORRUPT", message: expect.stringMatching(/refused/) });
      expect(readdirSync(target)).toEqual([]);
      rmSync(target, { recursive: true, force: true });
    }
  });

  it("an archive swapped in under another archive's manifest is refused", async () => {
    const d = tempDir();
    const other = await createBackup({
      sources: [join(root, "data")],
      outDir: d,
      name: "w",
      kind: "full",
      level: 3,
      encryption: { mode: "password", password: PW },
      binding: BINDING,
      chunkSize: 64 * 1024,
      scrypt: { N: 1024, r: 8, p: 1 },
      now: new Date(0),
    });
    copyFileSync(`${archive}.manifest`, join(d, `${other.fileName}.manifest`));
    await expect(verifyArchive({ source: other.path, key, scryptLimits: LIMITS })).rejects.toMatchObject({
      code: "CORRUPT",
    });
    rmSync(d, { recursive: true, force: true });
  });

  it("the header starts with the magic", () =>
    expect(readFileSync(archive).subarray(0, 8)).toEqual(ENC_MAGIC));
});

describe("unencrypted archive integrity", () => {
  it("truncation -> TRUNCATED, flipped bits -> CORRUPT", async () => {
    for (const cut of [plainBounds[1]!, plainBounds[2]! + 7, plainBounds[plainBounds.length - 1]! - 1]) {
      expect(
        await codeOf(
          variant(plainArchive, (b) => b.subarray(0, cut)),
          { mode: "none" },
        ),
      ).toBe("TRUNCATED");
    }
    for (const at of [10, plainBounds[2]! + 3, plainBounds[plainBounds.length - 2]! + 2]) {
      expect(
        await codeOf(
          variant(plainArchive, (b) => {
            const c = Buffer.from(b);
            c[at]! ^= 1;
            return c;
          }),
          { mode: "none" },
        ),
      ).toBe("CORRUPT");
    }
  });
});
