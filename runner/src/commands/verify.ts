import { verifyArchive } from "../archive/index";
import { ArchiveError } from "../archive/errors";
import { fail, keyFromArgs, out, parse, progressReporter } from "../archive/cli-support";
import { ARCHIVE_READ_FLAGS, DEST_USAGE, archiveLocation, destFail } from "./dest-flags";

export const usage = `cairn-runner verify ARCHIVE|URL [--password-file F | --key-file F] [--json] ${DEST_USAGE}`;

export async function run(argv: string[]): Promise<number> {
  try {
    const { values: v, positionals } = parse(argv, ARCHIVE_READ_FLAGS, 1);
    if (positionals.length !== 1) throw new ArchiveError("USAGE", `usage: ${usage}`);
    const at = await archiveLocation(positionals[0]!, v);
    const r = await verifyArchive({
      source: at.source,
      fileName: at.fileName,
      key: keyFromArgs(v),
      onProgress: progressReporter(v.json === true),
    }).finally(() => at.close());
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
