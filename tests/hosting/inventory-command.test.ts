import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { InventoryReport } from "../../shared/protocol/runner-messages";
import { run } from "../../runner/src/commands/inventory";
import { discoverInventory, inventoryReport, parseHostConfig } from "../../runner/src/inventory";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "cairn-inv-"));
  execFileSync("node", [
    "/work/shared/bench/make-hosting-dataset.mjs",
    "--out",
    join(dir, "host"),
    "--mib",
    "1",
    "--domains",
    "3",
  ]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function capture(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const o = vi.spyOn(process.stdout, "write").mockImplementation((s) => ((out += String(s)), true));
  const e = vi.spyOn(process.stderr, "write").mockImplementation((s) => ((err += String(s)), true));
  try {
    return { code: await run(argv), out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

describe("cairn-runner inventory", () => {
  it("prints the discovered domains as JSON and text", async () => {
    const j = await capture(["--root", join(dir, "host"), "--json"]);
    expect(j.code).toBe(0);
    const inv = JSON.parse(j.out);
    expect(inv.domains.map((d: { domain: string }) => d.domain)).toEqual([
      "site0.example.com",
      "site1.example.com",
      "site2.example.com",
    ]);
    const t = await capture(["--root", join(dir, "host")]);
    expect(t.out).toMatch(/^site1\.example\.com \(user1\)$/m);
    expect(t.out).toMatch(/3 domains/);
  });

  it("reports an unreachable database server as a warning and a bad config as CONFIG_INVALID", async () => {
    writeFileSync(
      join(dir, "cfg.json"),
      JSON.stringify({
        root: join(dir, "host"),
        databaseServers: [{ name: "pg", engine: "postgres", host: "127.0.0.1", port: 1, user: "postgres" }],
      }),
    );
    const r = await capture(["--config", join(dir, "cfg.json")]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/server pg \(postgres\): UNREACHABLE/);
    writeFileSync(
      join(dir, "bad.json"),
      JSON.stringify({ databaseServers: [{ name: "x", engine: "postgres", user: "u", password: "inline" }] }),
    );
    const b = await capture(["--config", join(dir, "bad.json")]);
    expect(b.code).toBe(2);
    expect(b.err).toMatch(/^CONFIG_INVALID /);
    expect(b.err).not.toMatch(/inline/);
  });

  it("turns the inventory into the protocol's inventory message", async () => {
    const inv = await discoverInventory({ root: join(dir, "host"), config: parseHostConfig({}) });
    const msg = InventoryReport.parse(inventoryReport(inv, new Date(1000)));
    expect(msg.collectedAt).toBe(1000);
    expect(msg.domains[0]).toEqual({
      domain: "site0.example.com",
      components: ["web", "mail", "dns", "ssl"],
      databases: [],
      details: { user: "user0", servers: [] },
    });
  });
});
