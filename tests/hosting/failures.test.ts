import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { discoverInventory, parseHostConfig, type HostConfig } from "../../runner/src/inventory";
import { hostingEntries } from "../../runner/src/sources";

let dir: string;
let config: HostConfig;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "cairn-fail-"));
  for (const d of ["a.example.com", "b.example.com"]) {
    mkdirSync(join(dir, "home/u/domains", d, "public_html"), { recursive: true });
    writeFileSync(join(dir, "home/u/domains", d, "public_html/index.html"), `<h1>${d}</h1>`);
    mkdirSync(join(dir, "ssl", d), { recursive: true });
    writeFileSync(join(dir, "ssl", d, "key.pem"), "k", { mode: 0o600 });
  }
  config = parseHostConfig({ root: dir });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function drain(cfg: HostConfig, remove?: string) {
  const inventory = await discoverInventory({ config: cfg });
  if (remove) rmSync(remove, { recursive: true });
  const { entries, report } = hostingEntries({
    inventory,
    config: cfg,
    selection: { domains: "all", components: ["web", "ssl"] },
  });
  const names: string[] = [];
  for await (const e of entries) names.push(e.name);
  return { names, report };
}

describe("component failures do not sink the others", () => {
  it("a web root that vanished fails only that component", async () => {
    const gone = join(dir, "home/u/domains/a.example.com/public_html");
    const { names, report } = await drain(config, gone);
    expect(report.failures).toEqual([
      expect.objectContaining({ domain: "a.example.com", component: "web", code: "SOURCE_FAILED" }),
    ]);
    expect(report.warnings[0]).toMatch(/a\.example\.com web failed \(SOURCE_FAILED\): cannot read .*ENOENT/);
    expect(names).toContain("a.example.com/ssl/key.pem");
    expect(names).toContain("b.example.com/web/index.html");
    mkdirSync(gone);
  });

  const asRoot = process.getuid?.() === 0;
  if (asRoot)
    console.log("skipping the EACCES case: running as root, which reads everything regardless of modes");
  it.skipIf(asRoot)("an unreadable directory is PERMISSION_DENIED for that component", async () => {
    const locked = join(dir, "ssl/b.example.com");
    chmodSync(locked, 0);
    try {
      const { names, report } = await drain(config);
      expect(report.failures).toEqual([
        expect.objectContaining({ domain: "b.example.com", component: "ssl", code: "PERMISSION_DENIED" }),
      ]);
      expect(names).toContain("b.example.com/web/index.html");
    } finally {
      chmodSync(locked, 0o755);
    }
  });
});
