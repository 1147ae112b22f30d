/** Google Cloud Storage through its S3-compatible XML API with HMAC keys: the S3 module, GCS defaults. */
import { S3Destination } from "./s3";
import type { S3Spec } from "./url";

export const GCS_XML_ENDPOINT = "https://storage.googleapis.com";

export function openGcs(spec: S3Spec): S3Destination {
  return new S3Destination({
    ...spec,
    type: "gcs",
    endpoint: spec.endpoint ?? GCS_XML_ENDPOINT,
    // GCS's XML API ignores the region but the signer needs one; "auto" is what Google documents.
    region: spec.region === "us-east-1" ? "auto" : spec.region,
    // GCS XML API rejects aws-kms style SSE headers and S3 storage class names.
    sse: undefined,
    storageClass: spec.storageClass === "STANDARD" ? "STANDARD" : undefined,
  });
}
