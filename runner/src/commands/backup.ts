import { randomBytes } from "node:crypto";
import { basename, resolve } from "node:path";
import { createBackup } from "../archive/index";
import { ArchiveError } from "../archive/errors";
import { fail, out, parse, progressReporter, readPasswordFile } from "../archive/cli-support";
import { checkPasswordPolicy } from "../../../shared/password-policy";
import { isValidBackupName } from "../../../shared/naming";
import { hostingBackupCli, hostingFail, isHostingRun } from "./hosting-cli";

export const usage = "cairn-runner backup --source DIR[,DIR...] --out DIR [--name NAME] [--level 1-9] [--encrypt none|password] [--password-file F] [--json]\n       cairn-runner backup --root DIR [--config F] --domains all|d1,d2 --components web,db,mail,dns,ssl,router --out DIR [--name NAME] ...";

export async function run(argv: string[]): Promise<number> {
  try {
    const { values: v } = parse(argv, {
      source: { type: "string", multiple: true },
      out: { type: "string" },
      name: { type: "string" },
      level: { type: "string" },
      encrypt: { type: "string" },
      "password-file": { type: "string" },
      json: { type: "boolean" },
      root: { type: "string" },
      config: { type: "string" },
      domains: { type: "string" },
      components: { type: "string" },
    });
    const hosting = isHostingRun(v);
    if (hosting && v.source?.length) throw new ArchiveError("USAGE", "--source and --root/--config/--domains/--components exclude each other");
    const sources = (v.source ?? []).flatMap((s) => s.split(",")).filter(Boolean).map((s) => resolve(s));
    if ((!hosting && !sources.length) || !v.out) throw new ArchiveError("USAGE", `missing --source or --out; usage: ${usage}`);
    const level = v.level === undefined ? 3 : Number(v.level);
    if (!Number.isInteger(level) || level < 1 || level > 9) throw new ArchiveError("USAGE", "--level must be 1-9");
    const mode = v.encrypt ?? "none";
    if (mode !== "none" && mode !== "password") throw new ArchiveError("USAGE", "--encrypt must be none or password");
    const name = v.name ?? (hosting ? "hosting" : basename(sources[0]!).replace(/[^A-Za-z0-9._-]/g, "_").replace(/^[^A-Za-z0-9]+/, "") || "backup");
    if (!isValidBackupName(name)) throw new ArchiveError("USAGE", `invalid --name ${JSON.stringify(name)}`);
    let encryption: Parameters<typeof createBackup>[0]["encryption"] = { mode: "none" };
    if (mode === "password") {
      if (!v["password-file"]) throw new ArchiveError("USAGE", "--encrypt password needs --password-file");
      const password = readPasswordFile(v["password-file"]);
      const policy = checkPasswordPolicy(password);
      if (!policy.ok) throw new ArchiveError("USAGE", `password does not meet the policy: needs ${policy.problems.join(", ")}`);
      encryption = { mode: "password", password };
    }
    if (hosting) return await hostingBackupCli({ ...v, out: v.out, name, level, encryption, json: v.json === true });
    // Without a control plane the ids are local; they are still bound into the archive.
    const id = `local_${randomBytes(8).toString("hex")}`;
    const r = await createBackup({
      sources, outDir: resolve(v.out), name, kind: "full", level, encryption,
      binding: { backupId: id, tenantId: "local", chainRootId: id, parentId: null },
      onProgress: progressReporter(v.json === true),
    });
    for (const w of r.warnings) if (!v.json) process.stderr.write(`warning: ${w}\n`);
    out(v.json === true, r, r.path);
    return 0;
  } catch (err) {
    return hostingFail(err) ?? fail(err);
  }
}
