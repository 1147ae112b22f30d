import { DurableObject } from "cloudflare:workers";
import { ApiErrorCode } from "../../../shared/errors";
import { RELAY_WAIT_MS } from "../../../shared/protocol/relay";
import { sha256Hex, timingSafeEqualString } from "../crypto/random";
import type { Env } from "../env";

/** What the download route records when it starts a relay. */
export interface RelayMeta {
  /** SHA-256 of the browser's one-time download key (the key itself is only in the URL handed out). */
  keyHash: string;
  runnerId: string;
  fileName: string;
  size: number;
  /** After this the relay is refused and its storage deleted. */
  expiresAt: number;
  /** Override of RELAY_WAIT_MS (tests, config). */
  waitMs?: number;
}

/** Why the runner's relay-upload job ended without sending (its job error; never credentials). */
export interface RelayFailure {
  jobId: string;
  code: string;
  message: string;
}

/** The relay of one download, by relay id (`rly_...`). */
export const relayStub = (env: Env, relayId: string) =>
  env.DOWNLOAD_RELAY.get(env.DOWNLOAD_RELAY.idFromName(relayId));

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

const refuse = (status: number, code: string, message: string) =>
  Response.json({ error: { code, message } }, { status });

/** 502 naming the job's own error, so the client learns why at once instead of at the wait's end. */
const relayFailed = (f: RelayFailure) =>
  Response.json(
    {
      error: {
        code: ApiErrorCode.RelayFailed,
        message: `the runner could not send the archive (${f.code}): ${f.message}`.slice(0, 600),
        job: { id: f.jobId, code: f.code },
      },
    },
    { status: 502 },
  );

/**
 * One per download (idFromName(relayId)): the rendezvous of the runner's streaming PUT and the browser's
 * GET. Bytes pass through a FixedLengthStream, so nothing is buffered beyond backpressure and a short
 * stream is an error at the browser, never a silently truncated file. Each side may come once.
 */
export class DownloadRelay extends DurableObject<Env> {
  private stream?: FixedLengthStream;
  private readonly uploader = deferred();
  private readonly downloader = deferred();
  private uploaderGaveUp = false;
  private downloaderGaveUp = false;
  private failure?: RelayFailure;

  async open(meta: RelayMeta): Promise<void> {
    if (await this.ctx.storage.get("meta")) throw new Error("relay id already in use");
    await this.ctx.storage.put("meta", meta);
    await this.ctx.storage.setAlarm(meta.expiresAt + 60_000);
  }

  /**
   * Why an upload would be refused, asked before the body is forwarded: a body handed to the object and
   * left unread breaks the runner's connection instead of giving it a clear answer. fetch() re-checks.
   */
  async uploadRefusal(
    runnerId: string,
  ): Promise<{ status: 403 | 404 | 409; code: string; message: string } | null> {
    const meta = await this.ctx.storage.get<RelayMeta>("meta");
    if (!meta) return { status: 404, code: "NOT_FOUND", message: "relay not found" };
    if (meta.runnerId !== runnerId)
      return { status: 403, code: "FORBIDDEN", message: "this relay belongs to another runner" };
    if (await this.ctx.storage.get("uploadClaimed"))
      return { status: 409, code: "CONFLICT", message: "this relay id was already used" };
    if (await this.ctx.storage.get("failure"))
      return { status: 409, code: "CONFLICT", message: "this relay was already reported failed" };
    return null;
  }

  /**
   * The runner's relay-upload job ended without sending (archive missing, destination error, job
   * rejected or interrupted): a waiting download answers 502 now, and so does one that arrives later.
   * Once bytes flow, a failure is the stream's own error (the length is fixed), so this changes nothing.
   */
  async fail(f: RelayFailure): Promise<void> {
    if (!(await this.ctx.storage.get("meta")) || this.stream) return;
    const failure = { jobId: f.jobId, code: f.code.slice(0, 64), message: f.message.slice(0, 500) };
    await this.ctx.storage.put("failure", failure);
    this.failure = failure;
    this.uploader.resolve();
  }

  override async alarm(): Promise<void> {
    await this.ctx.storage.deleteAll();
  }

  override async fetch(request: Request): Promise<Response> {
    const meta = await this.ctx.storage.get<RelayMeta>("meta");
    if (!meta) return refuse(404, "NOT_FOUND", "relay not found");
    const url = new URL(request.url);
    if (url.pathname === "/download") return this.download(meta, url.searchParams.get("key") ?? "");
    if (url.pathname === "/upload") return this.upload(meta, request);
    return refuse(404, "NOT_FOUND", "relay not found");
  }

  private async waitFor(p: Promise<void>, meta: RelayMeta): Promise<boolean> {
    let timer: number | null = null;
    const timeout = new Promise<false>(
      (r) => (timer = setTimeout(() => r(false), meta.waitMs ?? RELAY_WAIT_MS)),
    );
    try {
      return await Promise.race([p.then(() => true as const), timeout]);
    } finally {
      if (timer !== null) clearTimeout(timer);
    }
  }

  private async download(meta: RelayMeta, key: string): Promise<Response> {
    if (!key || !timingSafeEqualString(await sha256Hex(key), meta.keyHash))
      return refuse(401, "UNAUTHORIZED", "bad download key");
    if (Date.now() > meta.expiresAt) return refuse(410, "CONFLICT", "download link expired");
    const failed = this.failure ?? (await this.ctx.storage.get<RelayFailure>("failure"));
    if (failed) return relayFailed(failed);
    if (await this.ctx.storage.get("downloadClaimed"))
      return refuse(409, "CONFLICT", "this download link was already used");
    await this.ctx.storage.put("downloadClaimed", true);
    this.downloader.resolve();
    const arrived = await this.waitFor(this.uploader.promise, meta);
    if (this.failure && !this.stream) return relayFailed(this.failure);
    if (!arrived || this.uploaderGaveUp || !this.stream) {
      this.downloaderGaveUp = true;
      return refuse(
        504,
        "RELAY_TIMEOUT",
        "the runner did not start sending the archive in time (offline or busy); try again",
      );
    }
    const name = meta.fileName.replace(/[^A-Za-z0-9._-]/g, "_");
    return new Response(this.stream.readable, {
      headers: {
        "content-type": "application/octet-stream",
        "content-disposition": `attachment; filename="${name}"`,
        "cache-control": "no-store",
      },
    });
  }

  private async upload(meta: RelayMeta, request: Request): Promise<Response> {
    const res = await this.receive(meta, request);
    // A refused upload's body is drained away, so the runner sees the answer instead of a stalled send.
    if (!res.ok && !request.bodyUsed) await request.body?.cancel().catch(() => {});
    return res;
  }

  private async receive(meta: RelayMeta, request: Request): Promise<Response> {
    if (request.headers.get("x-cairn-runner-id") !== meta.runnerId)
      return refuse(403, "FORBIDDEN", "this relay belongs to another runner");
    if (!request.body) return refuse(400, "BAD_REQUEST", "no body");
    if (await this.ctx.storage.get("uploadClaimed"))
      return refuse(409, "CONFLICT", "this relay id was already used");
    if (this.failure || (await this.ctx.storage.get("failure")))
      return refuse(409, "CONFLICT", "this relay was already reported failed");
    await this.ctx.storage.put("uploadClaimed", true);
    this.stream = new FixedLengthStream(meta.size);
    this.uploader.resolve();
    const arrived = await this.waitFor(this.downloader.promise, meta);
    if (!arrived || this.downloaderGaveUp) {
      this.uploaderGaveUp = true;
      return refuse(504, "RELAY_TIMEOUT", "no one is waiting for this download any more");
    }
    try {
      await request.body.pipeTo(this.stream.writable);
      return Response.json({ ok: true, bytes: meta.size });
    } catch (e) {
      return refuse(502, "RELAY_BROKEN", `relay interrupted: ${(e as Error).message}`);
    }
  }
}
