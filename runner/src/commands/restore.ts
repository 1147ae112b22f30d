import { resolve } from "node:path";
import { restoreArchive } from "../archive/index";
import { ArchiveError } from "../archive/errors";
import { fail, keyFromArgs, out, parse, progressReporter } from "../archive/cli-support";
import { hostingFail, isHostingRun } from "./hosting-flags";
import { DEST_FLAGS, DEST_USAGE, destFail, isUrl, openArchiveUrl } from "./dest-flags";

export const usage =
  "cairn-runner restore ARCHIVE|URL --target DIR [--password-file F | --key-file F] [--only GLOB]... [--conflict skip|overwrite|rename] [--preserve-owner] [--json] " +
  DEST_USAGE +
  "\n       cairn-runner restore ARCHIVE --target DIR --domains all|d1,d2 --components web,db,mail,dns,ssl,router [--config F] [--root DIR (= --target: in place)] [--no-safety-backup] ...";

export async function run(argv: string[]): Promise<number> {
  try {
    const { values: v, positionals } = parse(
      argv,
      {
        target: { type: "string" },
        "password-file": { type: "string" },
        "key-file": { type: "string" },
        only: { type: "string", multiple: true },
        conflict: { type: "string" },
        "preserve-owner": { type: "boolean" },
        json: { type: "boolean" },
        root: { type: "string" },
        config: { type: "string" },
        domains: { type: "string" },
        components: { type: "string" },
        "no-safety-backup": { type: "boolean" },
        ...DEST_FLAGS,
      },
      1,
    );
    if (positionals.length !== 1 || !v.target) throw new ArchiveError("USAGE", `usage: ${usage}`);
    if (isHostingRun(v)) {
      return await (
        await import("./hosting-cli")
      ).hostingRestoreCli({
        ...v,
        archive: positionals[0]!,
        target: v.target,
        key: keyFromArgs(v),
        safetyBackup: v["no-safety-backup"] !== true,
        json: v.json === true,
      });
    }
    const conflict = v.conflict ?? "skip";
    if (conflict !== "skip" && conflict !== "overwrite" && conflict !== "rename")
      throw new ArchiveError("USAGE", "--conflict must be skip, overwrite or rename");
    const remote = isUrl(positionals[0]!) ? await openArchiveUrl(positionals[0]!, v) : undefined;
    const r = await restoreArchive({
      source: remote?.dest ?? resolve(positionals[0]!),
      fileName: remote?.fileName,
      target: resolve(v.target),
      key: keyFromArgs(v),
      only: v.only,
      conflict,
      preserveOwner: v["preserve-owner"] === true,
      onProgress: progressReporter(v.json === true),
    }).finally(() => remote?.dest.close());
    out(
      v.json === true,
      r,
      `restored ${r.entries} entries (${r.files} files, ${r.bytes} bytes) into ${r.target}${r.skipped.length ? `; skipped ${r.skipped.length} existing` : ""}${r.renamed.length ? `; renamed ${r.renamed.length}` : ""}`,
    );
    return 0;
  } catch (err) {
    return destFail(err) ?? hostingFail(err) ?? fail(err);
  }
}
