import { randomBytes } from "node:crypto";
import { resolve } from "node:path";
import { createBackup } from "../archive/index";
import { progressReporter } from "../archive/cli-support";
import type { DecryptionKey, EncryptionSpec } from "../archive/types";
import {
  engineRestoreSource,
  formatRestoreProgress,
  restoreHosting,
  restoreSelectionFromFlags,
} from "../hosting-restore";
import { discoverInventory, loadHostConfig, parseHostConfig } from "../inventory";
import { hostingEntries, parseSelection } from "../sources";
import { HostingError } from "../sources/errors";
import type { HostFlags } from "./hosting-flags";

/**
 * `cairn-runner backup|restore` with `--root/--config/--domains/--components`: the same sources and
 * phased restore the daemon's jobs use, with no control plane. Exit codes: 0 complete, 3 partial
 * (a component failed; the archive holds the rest), 1 failed, 2 usage/config.
 */

async function host(f: HostFlags) {
  const config = f.config ? await loadHostConfig(resolve(f.config)) : parseHostConfig({});
  const root = f.root ? resolve(f.root) : config.root;
  if (!root && Object.keys(config.domains).length === 0)
    throw new HostingError("CONFIG_INVALID", "hosting mode needs --root DIR or --config F with domains");
  return { config, root, inventory: await discoverInventory({ root, config }) };
}

export async function hostingBackupCli(
  f: HostFlags & { out: string; name: string; level: number; encryption: EncryptionSpec; json: boolean },
): Promise<number> {
  const selection = parseSelection(f.domains, f.components);
  const h = await host(f);
  for (const w of h.inventory.warnings) if (!f.json) process.stderr.write(`warning: ${w}\n`);
  const { entries, report } = hostingEntries({ inventory: h.inventory, config: h.config, selection });
  const id = `local_${randomBytes(8).toString("hex")}`;
  const r = await createBackup({
    entries,
    outDir: resolve(f.out),
    name: f.name,
    kind: "full",
    level: f.level,
    encryption: f.encryption,
    binding: { backupId: id, tenantId: "local", chainRootId: id, parentId: null },
    onProgress: progressReporter(f.json),
  });
  const partial = report.failures.length > 0;
  const warnings = [...r.warnings, ...report.warnings];
  if (f.json) {
    process.stdout.write(
      JSON.stringify({
        ...r,
        warnings,
        status: partial ? "partial" : "complete",
        domains: report.domains,
        failures: report.failures,
      }) + "\n",
    );
  } else {
    for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
    process.stdout.write(
      `${r.path}\n${partial ? `PARTIAL: ${report.failures.length} component(s) failed\n` : ""}`,
    );
  }
  return partial ? 3 : 0;
}

export async function hostingRestoreCli(
  f: HostFlags & {
    archive: string;
    target: string;
    key: DecryptionKey;
    conflict?: string;
    safetyBackup: boolean;
    json: boolean;
  },
): Promise<number> {
  const sel = restoreSelectionFromFlags({
    domains: f.domains,
    components: f.components,
    conflict: f.conflict,
  });
  const config = f.config ? await loadHostConfig(resolve(f.config)) : parseHostConfig({});
  const target = resolve(f.target);
  // --root equal to --target: put things back where this host keeps them; else the conventional layout under --target.
  const inPlace = f.root !== undefined && resolve(f.root) === target;
  const inventory = inPlace ? await discoverInventory({ root: target, config }) : undefined;
  const r = await restoreHosting({
    source: engineRestoreSource({ source: resolve(f.archive), key: f.key }),
    ...sel,
    config,
    ...(inventory ? { inventory } : { targetRoot: target }),
    routerDir: resolve(target, "router"),
    safetyBackup: f.safetyBackup,
    safetyDir: resolve(target, ".cairn-pre-restore"),
    onProgress: (p) => {
      if (f.json) process.stderr.write(JSON.stringify(p) + "\n");
      else process.stderr.write(formatRestoreProgress(p) + "\n");
    },
  });
  if (f.json) process.stdout.write(JSON.stringify(r) + "\n");
  else
    process.stdout.write(
      `restore ${r.status}: ${r.restored.length} component(s) restored, ${r.warnings.length} warning(s), ${r.errors.length} error(s)\n`,
    );
  return r.status === "completed" ? 0 : r.status === "partial" ? 3 : 1;
}
