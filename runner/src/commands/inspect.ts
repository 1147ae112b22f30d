import { resolve } from "node:path";
import { inspectArchive } from "../archive/index";
import { ArchiveError } from "../archive/errors";
import { fail, keyFromArgs, out, parse } from "../archive/cli-support";
import { DEST_FLAGS, DEST_USAGE, destFail, isUrl, openArchiveUrl } from "./dest-flags";

export const usage = `cairn-runner inspect ARCHIVE|URL [--password-file F | --key-file F] [--json] ${DEST_USAGE}`;

export async function run(argv: string[]): Promise<number> {
  try {
    const { values: v, positionals } = parse(
      argv,
      {
        "password-file": { type: "string" },
        "key-file": { type: "string" },
        json: { type: "boolean" },
        ...DEST_FLAGS,
      },
      1,
    );
    if (positionals.length !== 1) throw new ArchiveError("USAGE", `usage: ${usage}`);
    const key = keyFromArgs(v);
    const remote = isUrl(positionals[0]!) ? openArchiveUrl(positionals[0]!, v) : undefined;
    const r = await inspectArchive({
      source: remote?.dest ?? resolve(positionals[0]!),
      fileName: remote?.fileName,
      key: key.mode === "none" ? undefined : key,
    }).finally(() => remote?.dest.close());
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
