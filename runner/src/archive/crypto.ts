/**
 * Encryption container of `.tar.zst.enc` (docs/FORMAT.md §3): an authenticated header, then
 * AES-256-GCM segments in the STREAM construction, one segment per zstd frame.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  hkdfSync,
  randomBytes,
  scrypt as scryptCb,
  timingSafeEqual,
  webcrypto,
} from "node:crypto";
import type { ArchiveBinding } from "./types";
import { ArchiveError, corrupt, wrongKey } from "./errors";

export const ENC_MAGIC = Buffer.from("CAIRNENC", "ascii");
export const ENC_VERSION = 1;
export const MODE_PASSWORD = 1;
export const MODE_PANEL = 2;
export const TAG_LEN = 16;
export const SEG_LEN_FIELD = 4;
/** Largest header JSON a reader accepts. */
export const MAX_HEADER_JSON = 64 * 1024;

/** Production scrypt cost (N = 2^17, r = 8, p = 1). */
export const DEFAULT_SCRYPT = { N: 2 ** 17, r: 8, p: 1 } as const;
/** What a reader accepts before it runs any KDF work (refuses absurd headers cheaply). */
export interface ScryptLimits {
  maxLogN: number;
  minLogN: number;
  maxR: number;
  maxP: number;
}
export const SCRYPT_LIMITS: ScryptLimits = { maxLogN: 22, minLogN: 10, maxR: 32, maxP: 16 };

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

export interface EncHeaderJson {
  v: 1;
  mode: "password" | "panel";
  binding: ArchiveBinding;
  chunkSize: number;
  /** base64 */
  noncePrefix: string;
  hkdfSalt: string;
  commitment: string;
  kdf?: { id: "scrypt"; N: number; r: number; p: number; salt: string };
  /** Data key wrapped by the password-derived key (AES-256-GCM, 12-byte nonce || ct || tag). */
  wrapped?: string;
  keyId?: string;
  /** Panel mode: the data key as wrapped by the tenant's panel key (opaque to the runner). */
  wrappedKey?: string;
}

export type Kdf = (password: string, salt: Buffer, p: ScryptParams) => Promise<Buffer>;

export const scryptKdf: Kdf = (password, salt, p) =>
  new Promise((resolve, reject) =>
    scryptCb(
      password.normalize("NFC"),
      salt,
      32,
      { N: p.N, r: p.r, p: p.p, maxmem: 128 * p.N * p.r * p.p + 64 * 1024 * 1024 },
      (err, key) => (err ? reject(err) : resolve(key)),
    ),
  );

export interface SegmentKeys {
  segKey: Buffer;
  manifestKey: Buffer;
  commitment: Buffer;
}

export function deriveKeys(dataKey: Uint8Array, hkdfSalt: Buffer): SegmentKeys {
  const k = (info: string) => Buffer.from(hkdfSync("sha256", dataKey, hkdfSalt, info, 32));
  return {
    segKey: k("cairn/v1/segment"),
    manifestKey: k("cairn/v1/manifest"),
    commitment: k("cairn/v1/commit"),
  };
}

/** Checks scrypt parameters against the reader's limits; throws CORRUPT before any KDF work. */
export function checkScryptParams(
  p: { N: unknown; r: unknown; p: unknown },
  limits = SCRYPT_LIMITS,
): ScryptParams {
  const { N, r, p: par } = p;
  if (typeof N !== "number" || typeof r !== "number" || typeof par !== "number")
    throw corrupt("KDF parameters missing");
  if (!Number.isInteger(N) || N < 2 || (N & (N - 1)) !== 0)
    throw corrupt("KDF parameter N is not a power of two");
  const logN = Math.log2(N);
  if (logN > limits.maxLogN || logN < limits.minLogN)
    throw corrupt(`KDF parameter N=2^${logN} outside the accepted range`);
  if (!Number.isInteger(r) || r < 1 || r > limits.maxR)
    throw corrupt(`KDF parameter r=${r} outside the accepted range`);
  if (!Number.isInteger(par) || par < 1 || par > limits.maxP)
    throw corrupt(`KDF parameter p=${par} outside the accepted range`);
  return { N, r, p: par };
}

export interface SealContext {
  header: Buffer;
  /** SHA-256 of the whole header: the associated data of every segment and of the manifest. */
  aad: Buffer;
  keys: SegmentKeys;
  noncePrefix: Buffer;
  json: EncHeaderJson;
}

function encodeHeader(json: EncHeaderJson, mode: number): Buffer {
  const body = Buffer.from(JSON.stringify(json), "utf8");
  const fixed = Buffer.alloc(14);
  ENC_MAGIC.copy(fixed, 0);
  fixed[8] = ENC_VERSION;
  fixed[9] = mode;
  fixed.writeUInt32BE(body.length, 10);
  const pre = Buffer.concat([fixed, body]);
  // The trailing digest tells accidental header damage (CORRUPT) apart from a wrong key.
  return Buffer.concat([pre, createHash("sha256").update(pre).digest()]);
}

export interface CreateSealOptions {
  mode: "password" | "panel";
  binding: ArchiveBinding;
  chunkSize: number;
  password?: string;
  dataKey?: Uint8Array;
  keyId?: string;
  wrappedKey?: string;
  scrypt?: ScryptParams;
  kdf?: Kdf;
}

export async function createSealContext(o: CreateSealOptions): Promise<SealContext & { dataKey: Buffer }> {
  const hkdfSalt = randomBytes(32);
  const noncePrefix = randomBytes(7);
  let dataKey: Buffer;
  const json: EncHeaderJson = {
    v: 1,
    mode: o.mode,
    binding: o.binding,
    chunkSize: o.chunkSize,
    noncePrefix: noncePrefix.toString("base64"),
    hkdfSalt: hkdfSalt.toString("base64"),
    commitment: "",
  };
  if (o.mode === "password") {
    if (!o.password) throw new ArchiveError("USAGE", "password mode needs a password");
    dataKey = randomBytes(32);
    const params = o.scrypt ?? DEFAULT_SCRYPT;
    const salt = randomBytes(32);
    const kek = await (o.kdf ?? scryptKdf)(o.password, salt, params);
    const nonce = randomBytes(12);
    const c = createCipheriv("aes-256-gcm", kek, nonce);
    c.setAAD(Buffer.from("cairn/v1/wrap"));
    const ct = Buffer.concat([c.update(dataKey), c.final(), c.getAuthTag()]);
    json.kdf = { id: "scrypt", N: params.N, r: params.r, p: params.p, salt: salt.toString("base64") };
    json.wrapped = Buffer.concat([nonce, ct]).toString("base64");
  } else {
    if (!o.dataKey || o.dataKey.length !== 32)
      throw new ArchiveError("USAGE", "panel mode needs a 32-byte data key");
    dataKey = Buffer.from(o.dataKey);
    json.keyId = o.keyId;
    json.wrappedKey = o.wrappedKey;
  }
  const keys = deriveKeys(dataKey, hkdfSalt);
  json.commitment = keys.commitment.toString("base64");
  const header = encodeHeader(json, o.mode === "password" ? MODE_PASSWORD : MODE_PANEL);
  return { header, aad: createHash("sha256").update(header).digest(), keys, noncePrefix, json, dataKey };
}

/** Parses and integrity-checks a header from the start of `buf`; returns null when more bytes are needed. */
export function parseEncHeader(buf: Buffer): { json: EncHeaderJson; header: Buffer } | null {
  if (buf.length < 14) return null;
  if (!buf.subarray(0, 8).equals(ENC_MAGIC)) throw corrupt("not a Cairn encrypted archive (bad magic)");
  if (buf[8] !== ENC_VERSION) throw corrupt(`unsupported format version ${buf[8]}`);
  const len = buf.readUInt32BE(10);
  if (len > MAX_HEADER_JSON) throw corrupt("header too large");
  const total = 14 + len + 32;
  if (buf.length < total) return null;
  const pre = buf.subarray(0, 14 + len);
  if (
    !createHash("sha256")
      .update(pre)
      .digest()
      .equals(buf.subarray(14 + len, total))
  )
    throw corrupt("header checksum mismatch");
  let json: EncHeaderJson;
  try {
    json = JSON.parse(pre.subarray(14).toString("utf8")) as EncHeaderJson;
  } catch {
    throw corrupt("header is not valid JSON");
  }
  const modeByte = buf[9];
  if (
    json.v !== 1 ||
    (json.mode === "password" ? MODE_PASSWORD : json.mode === "panel" ? MODE_PANEL : -1) !== modeByte
  ) {
    throw corrupt("header mode/version inconsistent");
  }
  return { json, header: Buffer.from(buf.subarray(0, total)) };
}

export type ReadKey =
  { mode: "password"; password: string } | { mode: "panel"; dataKey: Uint8Array } | { mode: "none" };

export interface OpenOptions {
  kdf?: Kdf;
  scryptLimits?: ScryptLimits;
}

/** Unwraps the data key and checks the key commitment: WRONG_KEY here, never CORRUPT later. */
export async function openSealContext(
  json: EncHeaderJson,
  header: Buffer,
  key: ReadKey,
  o: OpenOptions = {},
): Promise<SealContext> {
  const b64 = (s: unknown, n?: number) => {
    if (typeof s !== "string") throw corrupt("header field missing");
    const b = Buffer.from(s, "base64");
    if (n !== undefined && b.length !== n) throw corrupt("header field has the wrong length");
    return b;
  };
  const noncePrefix = b64(json.noncePrefix, 7);
  const hkdfSalt = b64(json.hkdfSalt, 32);
  const commitment = b64(json.commitment, 32);
  if (typeof json.chunkSize !== "number") throw corrupt("header chunk size missing");
  let dataKey: Buffer;
  if (json.mode === "password") {
    if (key.mode !== "password") throw wrongKey("archive is password-encrypted; a password is needed");
    if (!json.kdf || json.kdf.id !== "scrypt") throw corrupt("unsupported KDF");
    const params = checkScryptParams(json.kdf, o.scryptLimits);
    const salt = b64(json.kdf.salt, 32);
    const wrapped = b64(json.wrapped, 12 + 32 + 16);
    const kek = await (o.kdf ?? scryptKdf)(key.password, salt, params);
    try {
      const d = createDecipheriv("aes-256-gcm", kek, wrapped.subarray(0, 12));
      d.setAAD(Buffer.from("cairn/v1/wrap"));
      d.setAuthTag(wrapped.subarray(44));
      dataKey = Buffer.concat([d.update(wrapped.subarray(12, 44)), d.final()]);
    } catch {
      throw wrongKey("wrong password");
    }
  } else if (json.mode === "panel") {
    if (key.mode !== "panel") throw wrongKey("archive is encrypted with a panel key; the data key is needed");
    dataKey = Buffer.from(key.dataKey);
  } else {
    throw corrupt("unknown encryption mode");
  }
  const keys = deriveKeys(dataKey, hkdfSalt);
  if (keys.commitment.length !== commitment.length || !timingSafeEqual(keys.commitment, commitment))
    throw wrongKey("wrong key (key commitment mismatch)");
  return { header, aad: createHash("sha256").update(header).digest(), keys, noncePrefix, json };
}

function nonce(prefix: Buffer, counter: number, last: boolean): Buffer {
  const n = Buffer.alloc(12);
  prefix.copy(n, 0);
  n.writeUInt32BE(counter, 7);
  n[11] = last ? 1 : 0;
  return n;
}

/** [u32 plaintext length][ciphertext][16-byte tag]. */
/**
 * The sealed segment as pieces (length field, ciphertext, tag), written one after another without
 * joining them. Synchronous on purpose: the AES-NI work is ~0.3 ms per MiB, less than a WebCrypto
 * round trip through the pool costs (copies, an ArrayBuffer per segment, a thread handoff).
 */
export function sealSegmentParts(
  ctx: SealContext,
  counter: number,
  last: boolean,
  plain: Buffer | Buffer[],
): Buffer[] {
  if (counter > 0xffffffff) throw new ArchiveError("IO_ERROR", "too many segments");
  const c = createCipheriv("aes-256-gcm", ctx.keys.segKey, nonce(ctx.noncePrefix, counter, last));
  c.setAAD(ctx.aad);
  const pieces = Array.isArray(plain) ? plain : [plain];
  const len = Buffer.alloc(4);
  len.writeUInt32BE(
    pieces.reduce((n, p) => n + p.length, 0),
    0,
  );
  // A frame may come in pieces (frame, checksum): sealed piece by piece, never joined.
  const out = [len, ...pieces.map((p) => c.update(p))];
  const fin = c.final();
  if (fin.length) out.push(fin);
  out.push(c.getAuthTag());
  return out;
}

/** Opens one segment body (without the length field). Throws CORRUPT when the tag does not verify. */
export function openSegment(ctx: SealContext, counter: number, last: boolean, body: Buffer): Buffer {
  const d = createDecipheriv("aes-256-gcm", ctx.keys.segKey, nonce(ctx.noncePrefix, counter, last));
  d.setAAD(ctx.aad);
  d.setAuthTag(body.subarray(body.length - TAG_LEN));
  try {
    const out = d.update(body.subarray(0, body.length - TAG_LEN));
    // GCM's final() only checks the tag (no bytes): skip a 1 MiB copy per segment.
    const fin = d.final();
    return fin.length ? Buffer.concat([out, fin]) : out;
  } catch {
    throw corrupt(`segment ${counter} failed authentication`);
  }
}

/**
 * Same check as openSegment, with the AES-GCM work on the libuv pool (WebCrypto), so a restore
 * decrypts frames concurrently with writing files instead of on the main thread.
 */
export async function openSegmentAsync(
  ctx: SealContext,
  counter: number,
  last: boolean,
  body: Buffer,
): Promise<Buffer> {
  const key = await openKeyFor(ctx);
  try {
    const pt = await webcrypto.subtle.decrypt(
      { name: "AES-GCM", iv: nonce(ctx.noncePrefix, counter, last), additionalData: ctx.aad, tagLength: 128 },
      key,
      body,
    );
    return Buffer.from(pt);
  } catch {
    throw corrupt(`segment ${counter} failed authentication`);
  }
}

const webOpenKeys = new WeakMap<SealContext, Promise<webcrypto.CryptoKey>>();
function openKeyFor(ctx: SealContext): Promise<webcrypto.CryptoKey> {
  let k = webOpenKeys.get(ctx);
  if (!k) {
    k = webcrypto.subtle.importKey("raw", ctx.keys.segKey, "AES-GCM", false, ["decrypt"]);
    webOpenKeys.set(ctx, k);
  }
  return k;
}

export function sealBlob(key: Buffer, aad: Buffer, plain: Buffer): Buffer {
  const n = randomBytes(12);
  const c = createCipheriv("aes-256-gcm", key, n);
  c.setAAD(aad);
  return Buffer.concat([n, c.update(plain), c.final(), c.getAuthTag()]);
}

export function openBlob(key: Buffer, aad: Buffer, blob: Buffer, what: string): Buffer {
  if (blob.length < 28) throw corrupt(`${what} too short`);
  const d = createDecipheriv("aes-256-gcm", key, blob.subarray(0, 12));
  d.setAAD(aad);
  d.setAuthTag(blob.subarray(blob.length - 16));
  try {
    return Buffer.concat([d.update(blob.subarray(12, blob.length - 16)), d.final()]);
  } catch {
    throw corrupt(`${what} failed authentication`);
  }
}
