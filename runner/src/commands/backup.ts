import { randomBytes } from "node:crypto";
import { basename, resolve } from "node:path";
import { createBackup } from "../archive/index";
import { ArchiveError } from "../archive/errors";
import { fail, out, parse, progressReporter, readPasswordFile } from "../archive/cli-support";
import { checkPasswordPolicy } from "../../../shared/password-policy";
import { isValidBackupName } from "../../../shared/naming";
import { hostingFail, isHostingRun } from "./hosting-flags";
import { DEST_FLAGS, DEST_USAGE, destFail, openDestUrl } from "./dest-flags";
import { LocalDestination } from "../destinations/local";
import { FanoutDestination } from "../jobs/fanout-destination";

export const usage =
  "cairn-runner backup --source DIR[,DIR...] (--out DIR | --dest URL) [--dest URL2]... [--name NAME] [--level 1-9] [--encrypt none|password] [--password-file F] [--json] " +
  DEST_USAGE +
  "\n       cairn-runner backup --root DIR [--config F] --domains all|d1,d2 --components web,db,mail,dns,ssl,router --out DIR [--name NAME] ...";

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
      dest: { type: "string", multiple: true },
      ...DEST_FLAGS,
    });
    const hosting = isHostingRun(v);
    if (hosting && v.source?.length)
      throw new ArchiveError(
        "USAGE",
        "--source and --root/--config/--domains/--components exclude each other",
      );
    const sources = (v.source ?? [])
      .flatMap((s) => s.split(","))
      .filter(Boolean)
      .map((s) => resolve(s));
    if (hosting && v.dest?.length)
      throw new ArchiveError("USAGE", "--dest works with --source backups only (hosting: use --out)");
    if ((!hosting && !sources.length) || (!v.out && !v.dest?.length))
      throw new ArchiveError("USAGE", `missing --source or --out; usage: ${usage}`);
    const level = v.level === undefined ? 3 : Number(v.level);
    if (!Number.isInteger(level) || level < 1 || level > 9)
      throw new ArchiveError("USAGE", "--level must be 1-9");
    const mode = v.encrypt ?? "none";
    if (mode !== "none" && mode !== "password")
      throw new ArchiveError("USAGE", "--encrypt must be none or password");
    const name =
      v.name ??
      (hosting
        ? "hosting"
        : basename(sources[0]!)
            .replace(/[^A-Za-z0-9._-]/g, "_")
            .replace(/^[^A-Za-z0-9]+/, "") || "backup");
    if (!isValidBackupName(name)) throw new ArchiveError("USAGE", `invalid --name ${JSON.stringify(name)}`);
    let encryption: Parameters<typeof createBackup>[0]["encryption"] = { mode: "none" };
    if (mode === "password") {
      if (!v["password-file"]) throw new ArchiveError("USAGE", "--encrypt password needs --password-file");
      const password = readPasswordFile(v["password-file"]);
      const policy = checkPasswordPolicy(password);
      if (!policy.ok)
        throw new ArchiveError(
          "USAGE",
          `password does not meet the policy: needs ${policy.problems.join(", ")}`,
        );
      encryption = { mode: "password", password };
    }
    if (hosting)
      return await (
        await import("./hosting-cli")
      ).hostingBackupCli({ ...v, out: v.out!, name, level, encryption, json: v.json === true });
    // Without a control plane the ids are local; they are still bound into the archive.
    const id = `local_${randomBytes(8).toString("hex")}`;
    if (v.dest?.length) {
      return await backupToDests(v, v.dest, (destination) =>
        createBackup({
          sources,
          outDir: v.out ? resolve(v.out) : "",
          name,
          kind: "full",
          level,
          encryption,
          binding: { backupId: id, tenantId: "local", chainRootId: id, parentId: null },
          onProgress: progressReporter(v.json === true),
          destination,
        }),
      );
    }
    const r = await createBackup({
      sources,
      outDir: resolve(v.out!),
      name,
      kind: "full",
      level,
      encryption,
      binding: { backupId: id, tenantId: "local", chainRootId: id, parentId: null },
      onProgress: progressReporter(v.json === true),
    });
    for (const w of r.warnings) if (!v.json) process.stderr.write(`warning: ${w}\n`);
    out(v.json === true, r, r.path);
    return 0;
  } catch (err) {
    return destFail(err) ?? hostingFail(err) ?? fail(err);
  }
}

/**
 * `--dest URL [--dest URL2]` (plus `--out DIR`): one read of the sources streamed to every location at once,
 * no staging on local disk. Prints each archive's URL; a failed copy is reported and makes the exit code 1.
 */
async function backupToDests(
  v: Parameters<typeof openDestUrl>[1] & { out?: string; json?: boolean },
  urls: string[],
  run: (destination: FanoutDestination) => ReturnType<typeof createBackup>,
): Promise<number> {
  const dests = await Promise.all(urls.map((u) => openDestUrl(u, v)));
  const primary = v.out ? new LocalDestination(resolve(v.out)) : dests[0]!;
  const copies = (v.out ? dests : dests.slice(1)).map((dest, i) => ({ destinationId: String(i), dest }));
  const fan = new FanoutDestination(primary, copies);
  try {
    const r = await run(fan);
    for (const w of r.warnings) if (!v.json) process.stderr.write(`warning: ${w}\n`);
    const results = fan.results(r.fileName, r.manifestFileName);
    const urlsOut = [`${primary.url.replace(/\/$/, "")}/${r.fileName}`];
    let failed = 0;
    results.forEach((c, i) => {
      const url = `${copies[i]!.dest.url.replace(/\/$/, "")}/${r.fileName}`;
      if (c.status === "completed") urlsOut.push(url);
      else {
        failed++;
        process.stderr.write(
          `${c.error?.code ?? "IO_ERROR"} copy to ${url} failed: ${(c.error?.message ?? "").replace(/\s+/g, " ")}\n`,
        );
      }
    });
    out(v.json === true, { ...r, urls: urlsOut, copies: results }, urlsOut.join("\n"));
    return failed ? 1 : 0;
  } finally {
    await Promise.all([primary.close().catch(() => {}), fan.close()]);
  }
}
