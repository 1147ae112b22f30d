/** Test Connection: write, read back and delete a small probe object, as every destination does. */
import { randomBytes } from "node:crypto";
import { pipeline } from "node:stream/promises";
import { Readable } from "node:stream";
import { DestinationError, type Destination } from "./types";

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

export async function runProbe(dest: Destination): Promise<void> {
  const name = `.cairn-probe-${randomBytes(8).toString("hex")}`;
  const body = randomBytes(4096);
  const w = await dest.createWriter(name, { sizeHint: body.length });
  try {
    await pipeline(Readable.from([body]), w.stream);
    await w.commit();
  } catch (err) {
    await w.abort(err);
    throw err;
  }
  try {
    const back = await readAll(await dest.createReadStream(name));
    if (!back.equals(body))
      throw new DestinationError(
        "INTEGRITY_MISMATCH",
        dest.url,
        "probe object read back differs from what was written",
      );
  } finally {
    await dest.delete(name);
  }
  if ((await dest.stat(name)) !== null)
    throw new DestinationError("PROTOCOL_ERROR", dest.url, "probe object still present after delete");
}
