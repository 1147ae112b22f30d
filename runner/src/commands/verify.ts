import { resolve } from "node:path";
import { verifyArchive } from "../archive/index";
import { ArchiveError } from "../archive/errors";
import { fail, keyFromArgs, out, parse, progressReporter } from "../archive/cli-support";

export const usage = "cairn-runner verify ARCHIVE [--password-file F | --key-file F] [--json]";

export async function run(argv: string[]): Promise<number> {
  try {
    const { values: v, positionals } = parse(argv, { "password-file": { type: "string" }, "key-file": { type: "string" }, json: { type: "boolean" } }, 1);
    if (positionals.length !== 1) throw new ArchiveError("USAGE", `usage: ${usage}`);
    const r = await verifyArchive({ source: resolve(positionals[0]!), key: keyFromArgs(v), onProgress: progressReporter(v.json === true) });
    out(v.json === true, r, `OK ${r.fileName}: ${r.entries} entries, ${r.bytes} bytes, ${r.frames} frames verified`);
    return 0;
  } catch (err) {
    return fail(err);
  }
}
