import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { discoverInventory, loadHostConfig, parseHostConfig, type Inventory } from "../inventory";
import { HostingError } from "../sources/errors";

export const usage = "cairn-runner inventory [--config F] [--root DIR] [--json]";

function human(inv: Inventory): string {
  const lines: string[] = [];
  for (const d of inv.domains) {
    const parts = [
      d.webRoot && `web ${d.webRoot}`,
      d.mailDir && `mail ${d.mailDir}`,
      d.mailConfig.length && `mail config ${d.mailConfig.length}`,
      d.dnsZone && `dns ${d.dnsZone}`,
      d.sslDir && `ssl ${d.sslDir}`,
      ...d.databases.map((db) => `db ${db.engine}/${db.name}@${db.server}`),
    ].filter(Boolean);
    lines.push(`${d.domain}${d.user ? ` (${d.user})` : ""}`, ...parts.map((p) => `  ${p}`));
  }
  for (const s of inv.servers)
    lines.push(
      `server ${s.name} (${s.engine}): ${s.reachable ? `${s.databases} databases` : `UNREACHABLE ${s.error ?? ""}`}`,
    );
  for (const u of inv.unmapped) lines.push(`unmapped ${u.engine}/${u.name}@${u.server}`);
  for (const r of inv.routers) lines.push(`router ${r.name} ${r.host}:${r.port}`);
  for (const w of inv.warnings) lines.push(`warning: ${w}`);
  lines.push(`${inv.domains.length} domains`);
  return lines.join("\n");
}

/** Prints what this host holds. Exit 0 with warnings printed (an unreachable server is reported, not fatal); 2 on bad usage or config. */
export async function run(argv: string[]): Promise<number> {
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        config: { type: "string" },
        root: { type: "string" },
        json: { type: "boolean" },
        help: { type: "boolean" },
      },
      allowPositionals: false,
    });
    if (values.help) {
      process.stdout.write(usage + "\n");
      return 0;
    }
    const config = values.config ? await loadHostConfig(resolve(values.config)) : parseHostConfig({});
    const root = values.root ? resolve(values.root) : undefined;
    if (
      !root &&
      !config.root &&
      Object.keys(config.domains).length === 0 &&
      config.databaseServers.length === 0
    ) {
      throw new HostingError("CONFIG_INVALID", `nothing to inventory: give --root or --config (${usage})`);
    }
    const inv = await discoverInventory({ root, config });
    process.stdout.write((values.json ? JSON.stringify(inv, null, 2) : human(inv)) + "\n");
    return 0;
  } catch (err) {
    const code = err instanceof HostingError ? err.code : "USAGE";
    process.stderr.write(`${code} ${(err as Error).message}\n`);
    return 2;
  }
}
