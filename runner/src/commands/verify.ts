import { resolve } from "node:path";
import { verifyArchive } from "../archive/index";
import { ArchiveError } from "../archive/errors";
import { fail, keyFromArgs, out, parse, progressReporter } from "../archive/cli-support";
import { DEST_FLAGS, DEST_USAGE, destFail, isUrl, openArchiveUrl } from "./dest-flags";

export const usage = `cairn-runner verify ARCHIVE|URL [--password-file F | --key-file F] [--json] ${DEST_USAGE}`;

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
    const remote = isUrl(positionals[0]!) ? openArchiveUrl(positionals[0]!, v) : undefined;
    const r = await verifyArchive({
      source: remote?.dest ?? resolve(positionals[0]!),
      fileName: remote?.fileName,
      key: keyFromArgs(v),
      onProgress: progressReporter(v.json === true),
    }).finally(() => remote?.dest.close());
    out(
      v.json === true,
      r,
      `OK ${r.fileName}: ${r.entries} entries, ${r.bytes} bytes, ${r.frames} frames verified`,
    );
    return 0;
  } catch (err) {
    return destFail(err) ?? fail(err);
  }
}
