/** Read streams whose errors are DestinationErrors, so readers see the destination and the cause. */
import { PassThrough, type Readable } from "node:stream";
import type { DestinationError } from "./types";

export function withMappedErrors(src: Readable, map: (err: unknown) => DestinationError): Readable {
  const out = new PassThrough({ highWaterMark: 1024 * 1024 });
  src.on("error", (err) => out.destroy(map(err)));
  // A reader that stops early must release the connection or file handle behind the stream.
  out.on("close", () => {
    if (!src.destroyed) src.destroy();
  });
  src.pipe(out);
  return out;
}
