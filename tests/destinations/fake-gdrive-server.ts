/**
 * A local HTTP server implementing the parts of the documented Google Drive v3 API and OAuth 2.0 token
 * endpoint that the client uses: token (refresh_token and authorization_code grants), files.list with
 * `q` (parents, name, mimeType, trashed), files.get (metadata and `alt=media` with Range), files.create
 * (folders), files.delete, and resumable uploads (session POST, chunk PUT with Content-Range, 308 +
 * Range, status query `bytes *\/total`, session cancel with DELETE). Fault switches for the tests, and
 * `tamperSessions()` to change bytes an open session holds (as a faulty or hostile store would).
 */
import { createHash, randomBytes, type Hash } from "node:crypto";
import { appendFileSync, createReadStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";

const FOLDER = "application/vnd.google-apps.folder";
const QUANTUM = 256 * 1024;

interface StoredFile {
  id: string;
  name: string;
  mimeType: string;
  parents: string[];
  /** Content lives on disk so the server's memory does not count against the client's in tests. */
  path?: string;
  size: number;
  md5: string;
  modifiedTime: string;
}

interface Session {
  name: string;
  parents: string[];
  path: string;
  md5: Hash;
  receivedLen: number;
}

export interface DriveFaults {
  /** Cut the connection after this many body bytes of the next chunk PUTs (count below). */
  resetChunkAfterBytes?: number;
  resetChunkCount?: number;
  /** Answer this many chunk PUTs with 503. */
  fail503Count?: number;
  /** Report a wrong md5Checksum for completed uploads. */
  corruptMd5?: boolean;
  /** Leave md5Checksum out of the metadata of completed uploads. */
  omitMd5?: boolean;
  /** Refuse new upload sessions with 403 storageQuotaExceeded. */
  quotaExceeded?: boolean;
  /** Answer upload-session status queries with 403 forbidden (a session this client may not use). */
  refuseSessionStatus?: boolean;
  /** Never answer a session cancel (DELETE): the request is held open and the session kept. */
  holdSessionCancel?: boolean;
}

export interface FakeDrive {
  apiBase: string;
  uploadBase: string;
  tokenUrl: string;
  /** Consent endpoint (already approved): redirects to redirect_uri with a one-time code and the state. */
  authUrl: string;
  rootId: string;
  clientId: string;
  clientSecret: string;
  refreshToken: string;
  /** A one-time authorization code the token endpoint exchanges for a refresh token. */
  authCode: string;
  redirectUri: string;
  faults: DriveFaults;
  stats: {
    refreshes: number;
    statusQueries: number;
    sessionsOpen: () => number;
    resets: number;
    codeExchanges: number;
    /** Body bytes received by chunk PUTs and kept by sessions (what uploads put on the wire). */
    chunkBytes: number;
    /** Session cancels left unanswered by `holdSessionCancel`. */
    cancelsHeld: number;
  };
  /**
   * Flip one byte (at `offset`) in what every open session holds; the session's MD5 is recomputed
   * from the changed bytes, as Drive would report the checksum of what it stores. Returns sessions changed.
   */
  tamperSessions(offset?: number): number;
  /** Expire every access token now (forces the client through a 401 and a refresh). */
  revokeAccessTokens(): void;
  close(): Promise<void>;
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=UTF-8",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

function driveError(res: http.ServerResponse, status: number, reason: string, message: string): void {
  json(res, status, { error: { code: status, message, errors: [{ reason, message }] } });
}

async function body(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Evaluates the subset of the Drive query language the client sends: clauses joined by `and`. */
function matches(f: StoredFile, q: string): boolean {
  const clauses = q.split(/\s+and\s+(?=(?:[^']*'[^']*')*[^']*$)/);
  const unq = (s: string) => s.slice(1, -1).replace(/\\'/g, "'").replace(/\\\\/g, "\\");
  return clauses.every((c) => {
    let m: RegExpExecArray | null;
    if ((m = /^('(?:[^'\\]|\\.)*') in parents$/.exec(c.trim())))
      return f.parents.includes(unq(m[1] as string));
    if ((m = /^name = ('(?:[^'\\]|\\.)*')$/.exec(c.trim()))) return f.name === unq(m[1] as string);
    if ((m = /^mimeType (=|!=) ('(?:[^'\\]|\\.)*')$/.exec(c.trim())))
      return (f.mimeType === unq(m[2] as string)) === (m[1] === "=");
    if (c.trim() === "trashed = false") return true;
    throw new Error(`unsupported query clause: ${c}`);
  });
}

function meta(f: StoredFile, corrupt = false): Record<string, unknown> {
  const out: Record<string, unknown> = {
    kind: "drive#file",
    id: f.id,
    name: f.name,
    mimeType: f.mimeType,
    parents: f.parents,
    modifiedTime: f.modifiedTime,
  };
  if (f.mimeType !== FOLDER) {
    out.size = String(f.size);
    out.md5Checksum = corrupt ? "0".repeat(32) : f.md5;
  }
  return out;
}

export async function startFakeDrive(): Promise<FakeDrive> {
  const files = new Map<string, StoredFile>();
  const store = mkdtempSync(join(tmpdir(), "cairn-fake-drive-"));
  const receive = (s: Session, data: Buffer) => {
    appendFileSync(s.path, data);
    s.md5.update(data);
    s.receivedLen += data.length;
    stats.chunkBytes += data.length;
  };
  const sessions = new Map<string, Session>();
  const tokens = new Set<string>();
  const rootId = `root${randomBytes(6).toString("hex")}`;
  files.set(rootId, {
    id: rootId,
    name: "Cairn backups",
    mimeType: FOLDER,
    parents: [],
    size: 0,
    md5: "",
    modifiedTime: new Date().toISOString(),
  });
  const faults: DriveFaults = {};
  let clock = Date.now();
  const now = () => new Date((clock += 1000)).toISOString();
  const state = {
    clientId: "cairn-test-client.apps.googleusercontent.com",
    clientSecret: `secret-${randomBytes(8).toString("hex")}`,
    refreshToken: `1//refresh-${randomBytes(8).toString("hex")}`,
    authCode: `4/code-${randomBytes(8).toString("hex")}`,
    redirectUri: "http://127.0.0.1/oauth/callback",
  };
  const stats = {
    refreshes: 0,
    statusQueries: 0,
    resets: 0,
    codeExchanges: 0,
    chunkBytes: 0,
    cancelsHeld: 0,
    sessionsOpen: () => sessions.size,
  };
  /** Codes minted by the consent endpoint: one-time, bound to redirect_uri and the PKCE challenge. */
  const issuedCodes = new Map<string, { redirectUri: string; challenge?: string }>();
  let base = "";

  const server = http.createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) driveError(res, 500, "backendError", (err as Error).message);
    });
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", base);
    const path = url.pathname;

    // Google's consent screen, already approved: redirect back with a fresh code and the state.
    if (path === "/auth" && req.method === "GET") {
      const q = url.searchParams;
      const redirectUri = q.get("redirect_uri") ?? "";
      if (q.get("client_id") !== state.clientId || q.get("response_type") !== "code" || !redirectUri)
        return json(res, 400, { error: "invalid_request" });
      const challenge = q.get("code_challenge") ?? undefined;
      if (challenge && q.get("code_challenge_method") !== "S256")
        return json(res, 400, { error: "invalid_request" });
      const code = `4/consent-${randomBytes(8).toString("hex")}`;
      issuedCodes.set(code, { redirectUri, challenge });
      const back = new URL(redirectUri);
      back.searchParams.set("code", code);
      back.searchParams.set("state", q.get("state") ?? "");
      res.writeHead(302, { location: back.toString() });
      res.end();
      return;
    }

    if (path === "/token" && req.method === "POST") {
      const form = new URLSearchParams((await body(req)).toString());
      if (form.get("client_id") !== state.clientId || form.get("client_secret") !== state.clientSecret) {
        return json(res, 401, {
          error: "invalid_client",
          error_description: "The OAuth client was not found.",
        });
      }
      const grant = form.get("grant_type");
      const access = `ya29.${randomBytes(12).toString("hex")}`;
      if (grant === "refresh_token" && form.get("refresh_token") === state.refreshToken) {
        stats.refreshes++;
        tokens.add(access);
        return json(res, 200, {
          access_token: access,
          expires_in: 3599,
          token_type: "Bearer",
          scope: "https://www.googleapis.com/auth/drive.file",
        });
      }
      const issued = grant === "authorization_code" ? issuedCodes.get(form.get("code") ?? "") : undefined;
      if (issued) {
        issuedCodes.delete(form.get("code") ?? "");
        const verifier = form.get("code_verifier") ?? "";
        const pkceOk =
          !issued.challenge || createHash("sha256").update(verifier).digest("base64url") === issued.challenge;
        if (form.get("redirect_uri") === issued.redirectUri && pkceOk) {
          stats.codeExchanges++;
          tokens.add(access);
          return json(res, 200, {
            access_token: access,
            refresh_token: state.refreshToken,
            expires_in: 3599,
            token_type: "Bearer",
          });
        }
        return json(res, 400, { error: "invalid_grant", error_description: "Bad Request" });
      }
      if (
        grant === "authorization_code" &&
        form.get("code") === state.authCode &&
        form.get("redirect_uri") === state.redirectUri
      ) {
        state.authCode = `used-${state.authCode}`;
        tokens.add(access);
        return json(res, 200, {
          access_token: access,
          refresh_token: state.refreshToken,
          expires_in: 3599,
          token_type: "Bearer",
        });
      }
      return json(res, 400, { error: "invalid_grant", error_description: "Bad Request" });
    }

    // Chunk PUTs and status queries go to the session URI, which is itself the credential.
    if (path === "/upload/drive/v3/files" && url.searchParams.has("upload_id")) {
      const id = url.searchParams.get("upload_id") as string;
      const s = sessions.get(id);
      if (!s) return driveError(res, 404, "notFound", "Upload session not found");
      if (req.method === "DELETE") {
        if (faults.holdSessionCancel) {
          stats.cancelsHeld++;
          return;
        }
        sessions.delete(id);
        res.writeHead(499).end();
        return;
      }
      const range = req.headers["content-range"] ?? "";
      const status = /^bytes \*\/(\d+|\*)$/.exec(range);
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(range);
      if (status) {
        await body(req);
        stats.statusQueries++;
        if (faults.refuseSessionStatus)
          return driveError(res, 403, "forbidden", "The user does not have access");
        if (status[1] !== "*" && Number(status[1]) === s.receivedLen) return complete(res, id, s);
        res.writeHead(308, s.receivedLen > 0 ? { range: `bytes=0-${s.receivedLen - 1}` } : {}).end();
        return;
      }
      if (!m) return driveError(res, 400, "badRequest", "Missing or invalid Content-Range");
      const start = Number(m[1]);
      const end = Number(m[2]);
      const total = m[3] === "*" ? undefined : Number(m[3]);
      if (start !== s.receivedLen)
        return driveError(res, 400, "badRequest", `expected chunk at ${s.receivedLen}, got ${start}`);
      const last = total !== undefined && end + 1 === total;
      if (!last && (end + 1 - start) % QUANTUM !== 0)
        return driveError(res, 400, "badRequest", "chunk size must be a multiple of 256 KiB");
      if (faults.fail503Count && faults.fail503Count > 0) {
        faults.fail503Count--;
        await body(req);
        return driveError(res, 503, "backendError", "Service unavailable");
      }
      // Reset fault: only a PUT whose body is longer than the limit is cut (and counted).
      const cutAt = faults.resetChunkAfterBytes;
      if (cutAt !== undefined && (faults.resetChunkCount ?? 0) > 0 && end + 1 - start > cutAt) {
        faults.resetChunkCount = (faults.resetChunkCount ?? 0) - 1;
        let got = 0;
        const kept: Buffer[] = [];
        await new Promise<void>((resolve) => {
          req.on("data", (c: Buffer) => {
            if (got >= cutAt) return;
            const piece = c.subarray(0, Math.min(c.length, cutAt - got));
            kept.push(piece);
            got += piece.length;
            if (got >= cutAt) {
              // Like Drive: keep what arrived, in whole 256 KiB units, then the connection drops.
              receive(s, Buffer.concat(kept).subarray(0, Math.floor(got / QUANTUM) * QUANTUM));
              stats.resets++;
              req.socket.destroy();
              resolve();
            }
          });
          req.on("close", () => resolve());
        });
        return;
      }
      const data = await body(req);
      if (data.length !== end + 1 - start)
        return driveError(res, 400, "badRequest", "body length does not match Content-Range");
      receive(s, data);
      if (last) return complete(res, id, s);
      res.writeHead(308, { range: `bytes=0-${s.receivedLen - 1}` }).end();
      return;
    }

    const auth = req.headers.authorization ?? "";
    if (!auth.startsWith("Bearer ") || !tokens.has(auth.slice(7))) {
      await body(req);
      return driveError(res, 401, "authError", "Invalid Credentials");
    }

    if (
      path === "/upload/drive/v3/files" &&
      req.method === "POST" &&
      url.searchParams.get("uploadType") === "resumable"
    ) {
      const m = JSON.parse((await body(req)).toString() || "{}") as { name?: string; parents?: string[] };
      if (faults.quotaExceeded)
        return driveError(
          res,
          403,
          "storageQuotaExceeded",
          "The user's Drive storage quota has been exceeded.",
        );
      const parent = m.parents?.[0];
      if (!m.name || !parent || files.get(parent)?.mimeType !== FOLDER)
        return driveError(res, 404, "notFound", "File not found: parent");
      const id = randomBytes(10).toString("hex");
      const spool = join(store, `session-${id}`);
      writeFileSync(spool, "");
      sessions.set(id, {
        name: m.name,
        parents: [parent],
        path: spool,
        md5: createHash("md5"),
        receivedLen: 0,
      });
      res
        .writeHead(200, {
          location: `${base}/upload/drive/v3/files?uploadType=resumable&upload_id=${id}`,
          "content-length": "0",
        })
        .end();
      return;
    }

    if (path === "/drive/v3/files" && req.method === "GET") {
      const q = url.searchParams.get("q") ?? "";
      const pageSize = Number(url.searchParams.get("pageSize") ?? "100");
      const offset = Number(url.searchParams.get("pageToken") ?? "0");
      const all = [...files.values()].filter((f) => f.id !== rootId && matches(f, q));
      const page = all.slice(offset, offset + pageSize);
      return json(res, 200, {
        kind: "drive#fileList",
        files: page.map((f) => meta(f)),
        ...(offset + pageSize < all.length ? { nextPageToken: String(offset + pageSize) } : {}),
      });
    }

    if (path === "/drive/v3/files" && req.method === "POST") {
      const m = JSON.parse((await body(req)).toString()) as {
        name: string;
        mimeType?: string;
        parents?: string[];
      };
      const parent = m.parents?.[0];
      if (!parent || files.get(parent)?.mimeType !== FOLDER)
        return driveError(res, 404, "notFound", "File not found: parent");
      const f: StoredFile = {
        id: randomBytes(10).toString("hex"),
        name: m.name,
        mimeType: m.mimeType ?? "application/octet-stream",
        parents: [parent],
        size: 0,
        md5: "",
        modifiedTime: now(),
      };
      files.set(f.id, f);
      return json(res, 200, meta(f));
    }

    const one = /^\/drive\/v3\/files\/([^/]+)$/.exec(path);
    if (one) {
      const f = files.get(decodeURIComponent(one[1] as string));
      if (!f) {
        await body(req);
        return driveError(res, 404, "notFound", "File not found");
      }
      if (req.method === "DELETE") {
        const drop = (id: string) => {
          files.delete(id);
          for (const c of [...files.values()]) if (c.parents.includes(id)) drop(c.id);
        };
        drop(f.id);
        res.writeHead(204).end();
        return;
      }
      if (req.method === "GET" && url.searchParams.get("alt") === "media") {
        const r = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
        if (r) {
          const start = Number(r[1]);
          const end = r[2] ? Math.min(Number(r[2]), f.size - 1) : f.size - 1;
          if (start >= f.size)
            return driveError(res, 416, "requestedRangeNotSatisfiable", "Range not satisfiable");
          res.writeHead(206, {
            "content-range": `bytes ${start}-${end}/${f.size}`,
            "content-length": end - start + 1,
          });
          if (f.path) createReadStream(f.path, { start, end }).pipe(res);
          else res.end();
          return;
        }
        res.writeHead(200, { "content-length": f.size, "content-type": "application/octet-stream" });
        if (f.path && f.size > 0) createReadStream(f.path).pipe(res);
        else res.end();
        return;
      }
      if (req.method === "GET") return json(res, 200, meta(f));
    }
    await body(req);
    return driveError(res, 404, "notFound", `no route ${req.method} ${path}`);
  }

  function complete(res: http.ServerResponse, id: string, s: Session): void {
    sessions.delete(id);
    const f: StoredFile = {
      id: randomBytes(10).toString("hex"),
      name: s.name,
      mimeType: "application/octet-stream",
      parents: s.parents,
      path: s.path,
      size: s.receivedLen,
      md5: s.md5.digest("hex"),
      modifiedTime: now(),
    };
    files.set(f.id, f);
    const done = meta(f, faults.corruptMd5);
    if (faults.omitMd5) delete done.md5Checksum;
    json(res, 200, done);
  }

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    apiBase: `${base}/drive/v3`,
    uploadBase: `${base}/upload/drive/v3`,
    tokenUrl: `${base}/token`,
    authUrl: `${base}/auth`,
    rootId,
    get clientId() {
      return state.clientId;
    },
    get clientSecret() {
      return state.clientSecret;
    },
    get refreshToken() {
      return state.refreshToken;
    },
    get authCode() {
      return state.authCode;
    },
    redirectUri: state.redirectUri,
    faults,
    stats,
    revokeAccessTokens: () => tokens.clear(),
    tamperSessions(offset = 1000) {
      let n = 0;
      for (const s of sessions.values()) {
        if (s.receivedLen <= offset) continue;
        const held = readFileSync(s.path);
        held[offset] = (held[offset] as number) ^ 0xff;
        writeFileSync(s.path, held);
        s.md5 = createHash("md5").update(held);
        n++;
      }
      return n;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(store, { recursive: true, force: true });
    },
  };
}
