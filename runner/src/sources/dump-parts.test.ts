import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { ArchiveEntry } from "../archive/types";
import { dumpEntries } from "./dump-parts";

const info = {
  engine: "postgres" as const,
  database: "d",
  server: "s",
  format: "pg_dump-custom" as const,
  tool: "sh",
};

async function collect(cmd: string, partSize: number): Promise<{ entries: ArchiveEntry[]; error?: Error }> {
  const child = spawn("sh", ["-c", cmd], { stdio: ["ignore", "pipe", "pipe"] });
  const entries: ArchiveEntry[] = [];
  try {
    for await (const e of dumpEntries(child, "test dump", {
      dir: "x.example.com/db/postgres/d",
      domain: "x.example.com",
      info,
      partSize,
    }))
      entries.push(e);
    return { entries };
  } catch (error) {
    return { entries, error: error as Error };
  }
}

const data = (e: ArchiveEntry) => (e.body?.kind === "buffer" ? e.body.data : Buffer.alloc(0));

describe("dumpEntries", () => {
  it("cuts stdout into bounded consecutive parts and records them in dump.json", async () => {
    const { entries, error } = await collect("seq 1 200000", 100_000);
    expect(error).toBeUndefined();
    const parts = entries.filter((e) => /dump\.part-\d{6}$/.test(e.name));
    const all = Buffer.concat(parts.map(data));
    const expected = Array.from({ length: 200000 }, (_, i) => `${i + 1}\n`).join("");
    expect(all.toString()).toBe(expected);
    expect(parts.map((p) => p.name.slice(-6))).toEqual(parts.map((_, i) => String(i + 1).padStart(6, "0")));
    expect(parts.every((p) => p.size <= 100_000 && p.size === data(p).length)).toBe(true);
    const json = JSON.parse(data(entries.at(-1)!).toString());
    expect(entries.at(-1)!.name).toBe("x.example.com/db/postgres/d/dump.json");
    expect(json).toMatchObject({
      parts: parts.length,
      bytes: all.length,
      sha256: createHash("sha256").update(all).digest("hex"),
    });
  });

  it("a dump killed midway fails and never gets dump.json", async () => {
    const { entries, error } = await collect("seq 1 100000; kill -9 $$", 50_000);
    expect(error).toMatchObject({ code: "DUMP_FAILED" });
    expect(error!.message).toMatch(/killed by SIGKILL/);
    expect(entries.some((e) => e.name.endsWith("dump.json"))).toBe(false);
  });

  it("a dump that exits non-zero fails with its stderr", async () => {
    const { error } = await collect("echo partial; echo 'pg_dump: error: boom' >&2; exit 1", 1000);
    expect(error).toMatchObject({ code: "DUMP_FAILED" });
    expect(error!.message).toMatch(/exited 1: pg_dump: error: boom/);
  });
});
