import { resolve } from "node:path";
import { inspectArchive } from "../archive/index";
import { ArchiveError } from "../archive/errors";
import { fail, keyFromArgs, out, parse } from "../archive/cli-support";

export const usage = "cairn-runner inspect ARCHIVE [--password-file F | --key-file F] [--json]";

export async function run(argv: string[]): Promise<number> {
  try {
    const { values: v, positionals } = parse(argv, { "password-file": { type: "string" }, "key-file": { type: "string" }, json: { type: "boolean" } }, 1);
    if (positionals.length !== 1) throw new ArchiveError("USAGE", `usage: ${usage}`);
    const key = keyFromArgs(v);
    const r = await inspectArchive({ source: resolve(positionals[0]!), key: key.mode === "none" ? undefined : key });
    const lines = [`archive ${r.fileName} (${r.size} bytes)`, `mode ${r.mode}`, `header ${JSON.stringify(r.header)}`];
    if (r.manifest) {
      const m = r.manifest;
      lines.push(`backup ${m.name} ${m.kind} created ${m.createdAt}`, `binding ${JSON.stringify(m.binding)}`, `entries ${m.totals.entries}, files ${m.totals.files}, bytes ${m.totals.bytes}, frames ${m.frames} of ${m.chunkSize} bytes`);
      if (Object.keys(m.domains).length) lines.push(`domains ${JSON.stringify(m.domains)}`);
      if (Object.keys(m.components).length) lines.push(`components ${JSON.stringify(m.components)}`);
      for (const w of m.warnings) lines.push(`warning ${w}`);
    } else lines.push("manifest: give --password-file or --key-file to read it");
    out(v.json === true, r, lines.join("\n"));
    return 0;
  } catch (err) {
    return fail(err);
  }
}
