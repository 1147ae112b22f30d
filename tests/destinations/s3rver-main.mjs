// s3rver in its own process (so its buffers do not count against the client's memory in tests and
// benchmarks), plus the two calls s3rver lacks: AbortMultipartUpload and ListMultipartUploads, answered
// from s3rver's own upload store. POST /__cairn/tamper-head-length?on=1 makes HEAD report one byte less,
// as a storage that lost data would. Prints {"port":N} on stdout once listening.
import { mkdtemp, readdir, rm } from "node:fs/promises";
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

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://x");
  const bucket = url.pathname.split("/")[1] ?? "";
  const uploadId = url.searchParams.get("uploadId");
  if (url.pathname === "/__cairn/tamper-head-length") {
    tamperHeadLength = url.searchParams.get("on") === "1";
    res.writeHead(204).end();
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
