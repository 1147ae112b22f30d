/**
 * What a paused (or transiently failed) S3 multipart upload leaves behind for the next attempt:
 * the upload id and, per part, the ETag, size and MD5 we computed. No credentials, no endpoint
 * secrets. The next attempt trusts none of it blindly: ListParts must confirm each part, and the
 * part's bytes re-read from the source must hash to the recorded MD5 before the part is skipped.
 */
import { z } from "zod";

export const S3ResumeToken = z.object({
  kind: z.literal("s3-multipart"),
  bucket: z.string().min(1),
  key: z.string().min(1),
  uploadId: z.string().min(1),
  partSize: z.number().int().positive(),
  parts: z
    .array(
      z.object({
        n: z.number().int().min(1).max(10_000),
        etag: z.string().min(1),
        size: z.number().int().positive(),
        md5: z.string().regex(/^[0-9a-f]{32}$/),
      }),
    )
    .max(10_000),
});
export type S3ResumeToken = z.infer<typeof S3ResumeToken>;

/** A token that does not parse is ignored (the upload restarts), never trusted. */
export function parseS3ResumeToken(token: unknown): S3ResumeToken | undefined {
  const r = S3ResumeToken.safeParse(token);
  return r.success ? r.data : undefined;
}
