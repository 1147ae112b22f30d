import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { DEFAULT_RETRY } from "./retry";
import { authorization, S3Client, S3ResponseError, signingKey, xmlBlocks, xmlText } from "./s3-client";
import { S3Destination } from "./s3";
import { DestinationError } from "./types";

// AWS's worked examples, "Signature Calculations for the Authorization Header: Transferring Payload
// in a Single Chunk": a signature bug that a lenient test server would accept fails here.
const SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const DATE = "20130524T000000Z";

function signExample(path: string, query: string, extra: Record<string, string>): string {
  return authorization({
    method: "GET",
    path,
    query,
    headers: {
      host: "examplebucket.s3.amazonaws.com",
      ...extra,
      "x-amz-content-sha256": EMPTY,
      "x-amz-date": DATE,
    },
    payloadHash: EMPTY,
    date: DATE,
    region: "us-east-1",
    accessKeyId: "AKIAIOSFODNN7EXAMPLE",
    signingKey: signingKey(SECRET, "20130524", "us-east-1"),
  });
}

describe("SigV4", () => {
  it("signs AWS's documented GET Object example to the documented signature", () => {
    expect(signExample("/test.txt", "", { range: "bytes=0-9" })).toBe(
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, " +
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, " +
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    );
  });

  it("signs AWS's documented GET Bucket (list) example, with a query", () => {
    expect(signExample("/", "max-keys=2&prefix=J", {})).toContain(
      "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
    );
  });
});

describe("S3 XML answers", () => {
  it("reads flat elements and decodes entities (keys may hold & < > and quotes)", () => {
    const xml =
      '<?xml version="1.0"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
      "<IsTruncated>false</IsTruncated><Contents><Key>a&amp;b&lt;c&gt;&quot;d&apos;&#233;</Key><Size>3</Size></Contents>" +
      "<Contents><Key>z</Key><Size>0</Size></Contents></ListBucketResult>";
    const contents = xmlBlocks(xml, "Contents");
    expect(contents.map((c) => xmlText(c, "Key"))).toEqual([`a&b<c>"d'é`, "z"]);
    expect(xmlText(xml, "IsTruncated")).toBe("false");
    expect(xmlText(xml, "NextContinuationToken")).toBeUndefined();
  });
});

describe("S3Client answers", () => {
  async function withServer(
    answer: (status: (n: number) => void) => string,
    fn: (client: S3Client) => Promise<void>,
  ): Promise<number> {
    let calls = 0;
    const server = createServer((req, res) => {
      calls++;
      req.resume();
      let code = 200;
      const body = answer((n) => (code = n));
      res.writeHead(code, { "content-type": "application/xml" }).end(body);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const client = new S3Client({
      bucket: "b",
      region: "us-east-1",
      endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      pathStyle: true,
      credentials: { accessKeyId: "k", secretAccessKey: "s" },
      retry: { ...DEFAULT_RETRY, baseDelayMs: 1, maxDelayMs: 2 },
      maxSockets: 2,
    });
    try {
      await fn(client);
    } finally {
      client.close();
      await new Promise((r) => server.close(r));
    }
    return calls;
  }

  it("a 200 that carries an <Error> (CompleteMultipartUpload does that) is an error, an InternalError retried", async () => {
    const calls = await withServer(
      () => "<Error><Code>InternalError</Code><Message>try again</Message></Error>",
      async (client) => {
        const err = await client.send({ method: "POST", key: "k", query: { uploadId: "u" } }).catch((e) => e);
        expect(err).toBeInstanceOf(S3ResponseError);
        expect((err as S3ResponseError).code).toBe("InternalError");
      },
    );
    expect(calls).toBe(DEFAULT_RETRY.attempts);
  });

  it("a 403 is final: its code and message come back, no retry", async () => {
    const calls = await withServer(
      (status) => {
        status(403);
        return "<Error><Code>SignatureDoesNotMatch</Code><Message>bad signature</Message></Error>";
      },
      async (client) => {
        const err = (await client.send({ method: "GET", key: "k" }).catch((e) => e)) as S3ResponseError;
        expect([err.code, err.status, err.message]).toEqual(["SignatureDoesNotMatch", 403, "bad signature"]);
      },
    );
    expect(calls).toBe(1);
  });

  it("an answer larger than 16 MiB is refused, not buffered", async () => {
    await withServer(
      (status) => {
        status(500);
        return "x".repeat(17 * 1024 * 1024);
      },
      async (client) => {
        const err = (await client.send({ method: "GET", key: "k" }).catch((e) => e)) as S3ResponseError;
        expect(err.code).toBe("ResponseTooLarge");
      },
    );
  });
});

/** An S3Destination against a local server that answers every request with `answer`. */
async function withFakeS3(
  answer: (req: IncomingMessage, res: ServerResponse) => void,
  fn: (dest: S3Destination) => Promise<void>,
): Promise<void> {
  const server = createServer((req, res) => {
    req.resume();
    answer(req, res);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const dest = new S3Destination({
    type: "s3",
    bucket: "bucket",
    prefix: "",
    region: "us-east-1",
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    pathStyle: true,
    credentials: { accessKeyId: "k", secretAccessKey: "s" },
    partSize: 5 * 1024 * 1024,
    queueSize: 1,
  });
  try {
    await fn(dest);
  } finally {
    await dest.close();
    await new Promise((r) => server.close(r));
  }
}

describe("S3Destination against a misbehaving server", () => {
  it("refuses a ranged read that the server answers with the whole object (200), since the bytes would be misplaced", async () => {
    await withFakeS3(
      (_req, res) => res.writeHead(200, { "content-length": "10" }).end("0123456789"),
      async (dest) => {
        const err = (await dest.createReadStream("a.bin", { start: 4 }).catch((e) => e)) as DestinationError;
        expect(err).toBeInstanceOf(DestinationError);
        expect(err.code).toBe("PROTOCOL_ERROR");
        expect(err.message).toContain("ignored the byte range");
        // Without a range, the same answer is the object.
        const whole = await dest.createReadStream("a.bin");
        let text = "";
        for await (const c of whole) text += String(c);
        expect(text).toBe("0123456789");
      },
    );
  });

  it("a listing whose continuation token comes back again is refused instead of paging forever", async () => {
    let pages = 0;
    await withFakeS3(
      (_req, res) => {
        pages++;
        res
          .writeHead(200)
          .end(
            "<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>same</NextContinuationToken>" +
              "<Contents><Key>a</Key><Size>1</Size></Contents></ListBucketResult>",
          );
      },
      async (dest) => {
        const err = (await dest.list().catch((e) => e)) as DestinationError;
        expect([err.code, err.message]).toEqual([
          "PROTOCOL_ERROR",
          "s3://bucket: list: the server repeated a continuation token",
        ]);
      },
    );
    expect(pages).toBe(2);
  });

  it("a part listing whose marker does not advance is refused instead of paging forever", async () => {
    await withFakeS3(
      (_req, res) =>
        res
          .writeHead(200)
          .end(
            "<ListPartsResult><IsTruncated>true</IsTruncated><NextPartNumberMarker>0</NextPartNumberMarker>" +
              '<Part><PartNumber>1</PartNumber><ETag>"e"</ETag><Size>5</Size></Part></ListPartsResult>',
          ),
      async (dest) => {
        const err = (await dest.listParts("k", "u").catch((e) => e)) as DestinationError;
        expect(err.code).toBe("PROTOCOL_ERROR");
        expect(err.message).toContain("the part marker did not advance");
      },
    );
  });
});

describe("S3Client addressing", () => {
  const client = (o: { bucket: string; endpoint?: string; pathStyle?: boolean }) =>
    new S3Client({
      region: "eu-west-1",
      pathStyle: false,
      credentials: { accessKeyId: "k", secretAccessKey: "s" },
      retry: DEFAULT_RETRY,
      maxSockets: 1,
      ...o,
    });

  it("uses AWS's regional endpoint, virtual-hosted, with keys encoded once and slashes kept", () => {
    expect(client({ bucket: "backups" }).urlOf("web 01/a+b.tar.zst")).toBe(
      "https://backups.s3.eu-west-1.amazonaws.com/web%2001/a%2Bb.tar.zst",
    );
  });

  it("puts a dotted bucket in the path over https, where the certificate could not cover its host name", () => {
    expect(client({ bucket: "backups.example.com" }).urlOf("k")).toBe(
      "https://s3.eu-west-1.amazonaws.com/backups.example.com/k",
    );
  });

  it("keeps a custom endpoint's base path, path-style; the bucket itself for listings", () => {
    const c = client({ bucket: "b", endpoint: "http://127.0.0.1:9000/s3/", pathStyle: true });
    expect(c.urlOf("x/y")).toBe("http://127.0.0.1:9000/s3/b/x/y");
    expect(c.urlOf()).toBe("http://127.0.0.1:9000/s3/b");
    expect(client({ bucket: "b", endpoint: "https://storage.googleapis.com" }).urlOf()).toBe(
      "https://b.storage.googleapis.com/",
    );
  });
});
