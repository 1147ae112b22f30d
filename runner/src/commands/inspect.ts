import { inspectArchive } from "../archive/index";
import { ArchiveError } from "../archive/errors";
import { fail, keyFromArgs, out, parse } from "../archive/cli-support";
import { ARCHIVE_READ_FLAGS, DEST_USAGE, archiveLocation, destFail } from "./dest-flags";

export const usage = `cairn-runner inspect ARCHIVE|URL [--password-file F | --key-file F] [--json] ${DEST_USAGE}`;

export async function run(argv: string[]): Promise<number> {
  try {
    const { values: v, positionals } = parse(argv, ARCHIVE_READ_FLAGS, 1);
    if (positionals.length !== 1) throw new ArchiveError("USAGE", `usage: ${usage}`);
    const key = keyFromArgs(v);
    const at = await archiveLocation(positionals[0]!, v);
    const r = await inspectArchive({
      source: at.source,
      fileName: at.fileName,
      key: key.mode === "none" ? undefined : key,
    }).finally(() => at.close());
    const lines = [
      `archive ${r.fileName} (${r.size} bytes)`,
      `mode ${r.mode}`,
      `header ${JSON.stringify(r.header)}`,
    ];
    if (r.manifest) {
      const m = r.manifest;
      lines.push(
        `backup ${m.name} ${m.kind} created ${m.createdAt}`,
        `binding ${JSON.stringify(m.binding)}`,
        `entries ${m.totals.entries}, files ${m.totals.files}, bytes ${m.totals.bytes}, frames ${m.frames} of ${m.chunkSize} bytes`,
      );
      if (Object.keys(m.domains).length) lines.push(`domains ${JSON.stringify(m.domains)}`);
      if (Object.keys(m.components).length) lines.push(`components ${JSON.stringify(m.components)}`);
      for (const w of m.warnings) lines.push(`warning ${w}`);
    } else lines.push("manifest: give --password-file or --key-file to read it");
    out(v.json === true, r, lines.join("\n"));
    return 0;
  } catch (err) {
    return destFail(err) ?? fail(err);
  }
}
