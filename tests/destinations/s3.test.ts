/** S3 destination against a real s3rver on loopback: AWS-style, GCS-style and custom-endpoint configs. */
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openGcs } from "../../runner/src/destinations/gcs";
import { S3Destination } from "../../runner/src/destinations/s3";
import { DestinationError } from "../../runner/src/destinations/types";
import { parseDestinationUrl, type S3Spec } from "../../runner/src/destinations/url";
import { destinationConformance, writeObject } from "./conformance";
import { openUploads, S3RVER_CREDENTIALS, startS3Server, type TestS3Server } from "./s3-server";
import { startTcpFaultProxy, type TcpFaultProxy } from "./tcp-fault-proxy";

const MiB = 1024 * 1024;
const FAST_RETRY = { attempts: 3, baseDelayMs: 10, maxDelayMs: 50 };
let server: TestS3Server;

beforeAll(async () => {
  server = await startS3Server(["cairn-aws", "cairn-gcs", "cairn-custom"]);
});
afterAll(async () => {
  await server?.close();
});

function spec(over: Partial<S3Spec> = {}): S3Spec {
  const base = parseDestinationUrl("s3://cairn-aws/backups/web-01", {
    s3Endpoint: server.endpoint,
    s3PathStyle: true,
    s3Credentials: S3RVER_CREDENTIALS,
  }) as S3Spec;
  return { ...base, partSize: 5 * MiB, queueSize: 2, retry: FAST_RETRY, ...over };
}

// Memory bound of an upload is about (queueSize + 2) x partSize (parts in flight, the part being
// filled, the SDK's hold on the last request) plus incoming chunks: measured ~23 MiB here for 5 MiB x 2.
// The big object is twice the limit, so an upload that buffered it whole would fail the check.
const BOUNDED = { bigObjectBytes: 64 * MiB, maxLiveBufferBytes: 32 * MiB };

destinationConformance(
  "s3 (path-style, custom endpoint, multipart 5 MiB x 2)",
  async () => new S3Destination(spec()),
  BOUNDED,
);

destinationConformance(
  "gcs (XML API over HMAC, gs:// URL)",
  async () => {
    const parsed = parseDestinationUrl(
      "gs://cairn-gcs/hosting",
      { s3Endpoint: server.endpoint, s3PathStyle: true },
      {
        AWS_ACCESS_KEY_ID: "S3RVER",
        AWS_SECRET_ACCESS_KEY: "S3RVER",
      },
    ) as S3Spec;
    expect(parsed.type).toBe("gcs");
    return openGcs({ ...parsed, partSize: 5 * MiB, queueSize: 2, retry: FAST_RETRY });
  },
  BOUNDED,
);

destinationConformance(
  "s3-compatible (bucket at root, storage class + SSE headers)",
  async () =>
    new S3Destination(
      spec({ bucket: "cairn-custom", prefix: "", storageClass: "STANDARD_IA", sse: "AES256" }),
    ),
  BOUNDED,
);

describe("s3 failures", () => {
  let proxy: TcpFaultProxy;
  beforeAll(async () => {
    proxy = await startTcpFaultProxy(server.port);
  });
  afterAll(async () => {
    await proxy?.close();
  });

  async function multipartUploads(dest: S3Destination): Promise<number> {
    return (await openUploads(dest.spec)).length;
  }

  it("a connection reset on every part upload is retried, then fails clearly and aborts the multipart upload", async () => {
    const dest = new S3Destination(spec({ endpoint: `http://127.0.0.1:${proxy.port}`, prefix: "reset" }));
    proxy.cutAfterBytes = 2 * MiB;
    const cutsBefore = proxy.cuts;
    try {
      const w = await dest.createWriter("reset.bin");
      const err = await pipeline(Readable.from([randomBytes(12 * MiB)]), w.stream)
        .then(() => w.commit())
        .then(
          () => null,
          (e: unknown) => e,
        );
      await w.abort(err);
      expect(err).toBeInstanceOf(DestinationError);
      expect((err as DestinationError).code).toBe("CONNECTION_FAILED");
      expect((err as DestinationError).message).toContain("s3://cairn-aws/reset");
      // Each part was tried more than once before giving up.
      expect(proxy.cuts - cutsBefore).toBeGreaterThanOrEqual(FAST_RETRY.attempts);
    } finally {
      proxy.cutAfterBytes = undefined;
    }
    expect(await dest.stat("reset.bin")).toBeNull();
    expect(await multipartUploads(dest)).toBe(0);
    await dest.close();
  });

  it("parts reuse keep-alive connections instead of opening one per part", async () => {
    const dest = new S3Destination(spec({ endpoint: `http://127.0.0.1:${proxy.port}`, prefix: "keepalive" }));
    const before = proxy.connections;
    // 6 parts of 5 MiB, 2 in flight, plus create, complete and head.
    await writeObject(dest, "k.bin", randomBytes(30 * MiB));
    expect(proxy.connections - before).toBeLessThanOrEqual(dest.spec.queueSize + 1);
    await dest.close();
  });

  it("a size hint raises the part size so huge objects stay within 10,000 parts", async () => {
    const dest = new S3Destination(spec({ prefix: "hint" }));
    const before = (await server.partStats()).partRequests;
    const body = randomBytes(13 * MiB);
    // 9,000 x 7 MiB hinted: 7 MiB parts (2 parts) instead of the configured 5 MiB (3 parts).
    const w = await dest.createWriter("hinted.bin", { sizeHint: 9_000 * 7 * MiB });
    await pipeline(Readable.from([body]), w.stream);
    expect((await w.commit()).size).toBe(body.length);
    expect((await server.partStats()).partRequests - before).toBe(2);
    await dest.close();
  });

  it("an aborted multipart upload leaves no parts behind", async () => {
    const dest = new S3Destination(spec({ prefix: "abort" }));
    const w = await dest.createWriter("half.bin");
    await new Promise<void>((resolve, reject) =>
      w.stream.write(randomBytes(11 * MiB), (e) => (e ? reject(e) : resolve())),
    );
    expect(await multipartUploads(dest)).toBeGreaterThan(0);
    await w.abort();
    expect(await multipartUploads(dest)).toBe(0);
    expect(await dest.stat("half.bin")).toBeNull();
    await dest.close();
  });

  it("cancelling through the signal aborts the upload", async () => {
    const dest = new S3Destination(spec({ prefix: "cancel" }));
    const ac = new AbortController();
    const w = await dest.createWriter("c.bin", { signal: ac.signal });
    await new Promise<void>((resolve, reject) =>
      w.stream.write(randomBytes(6 * MiB), (e) => (e ? reject(e) : resolve())),
    );
    ac.abort(new Error("cancelled by user"));
    await w.abort();
    const err = await w.commit().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect(await multipartUploads(dest)).toBe(0);
    expect(await dest.stat("c.bin")).toBeNull();
    await dest.close();
  });

  it("a size mismatch after upload is INTEGRITY_MISMATCH and the bad object is removed", async () => {
    const dest = new S3Destination(spec({ prefix: "integrity" }));
    await server.setTamperHeadLength(true);
    let err: unknown;
    try {
      err = await writeObject(dest, "x.bin", randomBytes(1000)).then(
        () => null,
        (e: unknown) => e,
      );
    } finally {
      await server.setTamperHeadLength(false);
    }
    expect((err as DestinationError).code).toBe("INTEGRITY_MISMATCH");
    expect(await dest.stat("x.bin")).toBeNull();
    await dest.close();
  });

  // s3rver reports a multipart object's ETag as the plain MD5 of the whole object and does not check
  // Content-MD5: a part damaged on the way is stored and its ETag is the MD5 of the damaged bytes.
  it("a part damaged on the way to a server that does not check Content-MD5 is INTEGRITY_MISMATCH, nothing is left", async () => {
    const dest = new S3Destination(spec({ endpoint: `http://127.0.0.1:${proxy.port}`, prefix: "damaged" }));
    // Past the request headers, inside the first part body of each connection.
    proxy.flipByteAt = MiB;
    const flipsBefore = proxy.flips;
    let err: unknown;
    try {
      err = await writeObject(dest, "d.bin", randomBytes(12 * MiB)).then(
        () => null,
        (e: unknown) => e,
      );
    } finally {
      proxy.flipByteAt = undefined;
    }
    expect(proxy.flips - flipsBefore).toBeGreaterThanOrEqual(1);
    expect(err).toBeInstanceOf(DestinationError);
    expect((err as DestinationError).code).toBe("INTEGRITY_MISMATCH");
    expect((err as DestinationError).message).toContain("etags were not their MD5s");
    expect(await dest.stat("d.bin")).toBeNull();
    expect(await multipartUploads(dest)).toBe(0);
    await dest.close();
  });

  it("AWS-style multipart ETags (md5 of part MD5s -N): the right one is accepted, a wrong one is INTEGRITY_MISMATCH", async () => {
    const dest = new S3Destination(spec({ prefix: "aws-etag" }));
    const body = randomBytes(12 * MiB);
    try {
      await server.setMultipartEtag("aws");
      await writeObject(dest, "ok.bin", body);
      await server.setMultipartEtag("aws-wrong");
      const err = await writeObject(dest, "bad.bin", body).then(
        () => null,
        (e: unknown) => e,
      );
      expect((err as DestinationError).code).toBe("INTEGRITY_MISMATCH");
      expect((err as DestinationError).message).toMatch(/etag [0-9a-f]{32}-3 vs [0-9a-f]{32}-3/);
    } finally {
      await server.setMultipartEtag(undefined);
    }
    expect(await dest.stat("ok.bin")).toMatchObject({ size: body.length });
    expect(await dest.stat("bad.bin")).toBeNull();
    await dest.close();
  });

  // s3rver checks the access key id but not SigV4 signatures, so the wrong credential is the key id.
  it("wrong credentials are AUTH_FAILED, without the secret in the message", async () => {
    const dest = new S3Destination(
      spec({ credentials: { accessKeyId: "WRONGKEY", secretAccessKey: "not-the-secret-xyz" } }),
    );
    const err = await dest.test().then(
      () => null,
      (e: unknown) => e,
    );
    expect((err as DestinationError).code).toBe("AUTH_FAILED");
    expect(String((err as Error).message)).not.toContain("not-the-secret-xyz");
    await dest.close();
  });

  it("a missing bucket is NOT_FOUND naming the destination", async () => {
    const dest = new S3Destination(spec({ bucket: "no-such-bucket" }));
    for (const op of [() => dest.test(), () => dest.list(), () => dest.stat("a")]) {
      const err = await op().then(
        () => null,
        (e: unknown) => e,
      );
      expect((err as DestinationError).code).toBe("NOT_FOUND");
      expect((err as DestinationError).message).toContain("s3://no-such-bucket");
    }
    await dest.close();
  });

  it("an unreachable endpoint is CONNECTION_FAILED after bounded retries", async () => {
    const dest = new S3Destination(spec({ endpoint: "http://127.0.0.1:1" }));
    const err = await dest.list().then(
      () => null,
      (e: unknown) => e,
    );
    expect((err as DestinationError).code).toBe("CONNECTION_FAILED");
    await dest.close();
  });
});
