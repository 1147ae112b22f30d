// s3rver in its own process (so its buffers do not count against the client's memory in tests and
// benchmarks), plus the two calls s3rver lacks: AbortMultipartUpload and ListMultipartUploads, answered
// from s3rver's own upload store. POST /__cairn/tamper-head-length?on=1 makes HEAD report one byte less,
// as a storage that lost data would. ListParts is answered from the upload store too. For resume tests:
// POST /__cairn/parts?holdAbove=N&failAbove=M holds (never answers) or fails (500) UploadPart requests
// with a part number above N / M (no value clears); GET /__cairn/stats counts the UploadPart requests
// passed to s3rver and their bytes. s3rver reports a multipart object's ETag as the plain MD5 of the
// whole object; POST /__cairn/multipart-etag?mode=aws makes HEAD report it as AWS does,
// md5(part MD5s)-N, and mode=aws-wrong reports that value with its first digit changed (no mode clears).
// Prints {"port":N} on stdout once listening.
import { createHash } from "node:crypto";
import { mkdtemp, readdir, rm, stat, readFile } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import S3rver from "s3rver";

const buckets = (process.argv[2] ?? "").split(",").filter(Boolean);
const directory = await mkdtemp(join(tmpdir(), "cairn-s3rver-"));
const s3 = new S3rver({
  silent: true,
  directory,
  configureBuckets: buckets.map((name) => ({ name })),
  vhostBuckets: false,
});
await s3.configureBuckets();
const handle = s3.callback();
const uploadsDir = (bucket) => s3.store.getResourcePath(bucket, undefined, "uploads");
let tamperHeadLength = false;
let multipartEtagMode;
/** "bucket/key" -> md5(part MD5s)-N of the multipart upload that made the object. */
const multipartEtags = new Map();
const parts = { holdAbove: undefined, failAbove: undefined, held: new Set(), requests: 0, bytes: 0 };
const numberParam = (url, name) =>
  url.searchParams.get(name) ? Number(url.searchParams.get(name)) : undefined;

async function awsMultipartEtag(bucket, uploadId) {
  const dir = join(uploadsDir(bucket), uploadId);
  const nums = (await readdir(dir))
    .filter((x) => /^\d+\.md5$/.test(x))
    .map((x) => Number(x.slice(0, -4)))
    .sort((a, b) => a - b);
  const md5s = await Promise.all(nums.map((n) => readFile(join(dir, `${n}.md5`), "utf8")));
  const all = Buffer.concat(md5s.map((h) => Buffer.from(h, "hex")));
  return `${createHash("md5").update(all).digest("hex")}-${nums.length}`;
}

async function listParts(bucket, uploadId) {
  const dir = join(uploadsDir(bucket), uploadId);
  const names = await readdir(dir);
  const items = [];
  // A part counts once its .md5 is written, i.e. s3rver received all of it.
  for (const n of names.filter((x) => /^\d+\.md5$/.test(x))) {
    const num = Number(n.slice(0, -4));
    const [md5, st] = await Promise.all([readFile(join(dir, n), "utf8"), stat(join(dir, String(num)))]);
    items.push({ num, md5, size: st.size });
  }
  items.sort((a, b) => a.num - b.num);
  return items
    .map((p) => `<Part><PartNumber>${p.num}</PartNumber><ETag>"${p.md5}"</ETag><Size>${p.size}</Size></Part>`)
    .join("");
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://x");
  const bucket = url.pathname.split("/")[1] ?? "";
  const uploadId = url.searchParams.get("uploadId");
  if (url.pathname === "/__cairn/tamper-head-length") {
    tamperHeadLength = url.searchParams.get("on") === "1";
    res.writeHead(204).end();
    return;
  }
  if (url.pathname === "/__cairn/multipart-etag") {
    multipartEtagMode = url.searchParams.get("mode") || undefined;
    res.writeHead(204).end();
    return;
  }
  if (url.pathname === "/__cairn/parts") {
    parts.holdAbove = numberParam(url, "holdAbove");
    parts.failAbove = numberParam(url, "failAbove");
    for (const r of parts.held) r.writeHead(503).end();
    parts.held.clear();
    res.writeHead(204).end();
    return;
  }
  if (url.pathname === "/__cairn/stats") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ partRequests: parts.requests, partBytes: parts.bytes, held: parts.held.size }));
    return;
  }
  const partNumber = url.searchParams.get("partNumber");
  if (req.method === "PUT" && uploadId && partNumber) {
    const n = Number(partNumber);
    if (parts.holdAbove !== undefined && n > parts.holdAbove) {
      parts.held.add(res);
      req.resume();
      res.on("close", () => parts.held.delete(res));
      return;
    }
    if (parts.failAbove !== undefined && n > parts.failAbove) {
      req.resume();
      res.writeHead(500, { "content-type": "application/xml" });
      res.end("<Error><Code>InternalError</Code><Message>injected</Message></Error>");
      return;
    }
    parts.requests++;
    parts.bytes += Number(req.headers["content-length"] ?? 0);
  }
  if (req.method === "GET" && uploadId) {
    listParts(bucket, uploadId).then(
      (items) => {
        res.writeHead(200, { "content-type": "application/xml" });
        res.end(
          `<?xml version="1.0" encoding="UTF-8"?><ListPartsResult><Bucket>${bucket}</Bucket><UploadId>${uploadId}</UploadId><IsTruncated>false</IsTruncated>${items}</ListPartsResult>`,
        );
      },
      () =>
        res
          .writeHead(404, { "content-type": "application/xml" })
          .end("<Error><Code>NoSuchUpload</Code></Error>"),
    );
    return;
  }
  if (req.method === "DELETE" && uploadId) {
    rm(join(uploadsDir(bucket), uploadId), { recursive: true }).then(
      () => res.writeHead(204).end(),
      () =>
        res
          .writeHead(404, { "content-type": "application/xml" })
          .end("<Error><Code>NoSuchUpload</Code></Error>"),
    );
    return;
  }
  if (req.method === "GET" && url.searchParams.has("uploads")) {
    readdir(uploadsDir(bucket))
      .catch(() => [])
      .then((ids) => {
        const items = ids.map((id) => `<Upload><UploadId>${id}</UploadId></Upload>`).join("");
        res.writeHead(200, { "content-type": "application/xml" });
        res.end(
          `<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult><Bucket>${bucket}</Bucket>${items}</ListMultipartUploadsResult>`,
        );
      });
    return;
  }
  if (req.method === "POST" && uploadId) {
    // CompleteMultipartUpload: note the AWS-style ETag before s3rver joins the parts and removes them.
    const objectPath = decodeURIComponent(url.pathname.slice(1));
    awsMultipartEtag(bucket, uploadId).then(
      (etag) => {
        multipartEtags.set(objectPath, etag);
        handle(req, res);
      },
      () => handle(req, res),
    );
    return;
  }
  const awsEtag = multipartEtags.get(decodeURIComponent(url.pathname.slice(1)));
  if (req.method === "HEAD" && multipartEtagMode && awsEtag) {
    const reported =
      multipartEtagMode === "aws-wrong" ? `${awsEtag[0] === "0" ? "1" : "0"}${awsEtag.slice(1)}` : awsEtag;
    const setHeader = res.setHeader.bind(res);
    res.setHeader = (k, v) => setHeader(k, k.toLowerCase() === "etag" ? `"${reported}"` : v);
  }
  if (req.method === "HEAD" && tamperHeadLength) {
    const setHeader = res.setHeader.bind(res);
    res.setHeader = (k, v) => setHeader(k, k.toLowerCase() === "content-length" ? String(Number(v) - 1) : v);
  }
  handle(req, res);
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
const stop = () => {
  server.closeAllConnections();
  server.close();
  rm(directory, { recursive: true, force: true }).finally(() => process.exit(0));
};
process.on("SIGTERM", stop);
process.stdin.on("end", stop);
process.stdin.resume();
