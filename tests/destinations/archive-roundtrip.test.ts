/**
 * Cross-part: an encrypted backup streamed by the archive engine straight to each remote destination
 * type (no local staging), verified and restored from there byte for byte. Real servers on loopback.
 */
import { mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBackup, restoreArchive, verifyArchive } from "../../runner/src/archive/index";
import { BINDING, describeTree, makeTree, tempDir } from "../../runner/src/archive/test-helpers";
import { FtpDestination } from "../../runner/src/destinations/ftp";
import { GdriveDestination } from "../../runner/src/destinations/gdrive";
import { S3Destination } from "../../runner/src/destinations/s3";
import { SftpDestination } from "../../runner/src/destinations/sftp";
import type { Destination } from "../../runner/src/destinations/types";
import { startFakeDrive, type FakeDrive } from "./fake-gdrive-server";
import { startFtpServer, type TestFtpServer } from "./ftp-server";
import { S3RVER_CREDENTIALS, startS3Server, type TestS3Server } from "./s3-server";
import { sshdUnavailable, startSshd, type TestSshd } from "./sshd";

const MiB = 1024 * 1024;
const PW = "correct horse battery staple";
const KEY = { mode: "password" as const, password: PW };
const LIMITS = { maxLogN: 22, minLogN: 10, maxR: 32, maxP: 16 };
const RETRY = { attempts: 3, baseDelayMs: 10, maxDelayMs: 50 };
const noSshd = sshdUnavailable();
if (noSshd) console.warn(`sftp round trip skipped: ${noSshd}`);

let root: string;
let src: string;
let s3: TestS3Server;
let ftp: TestFtpServer;
let sshd: TestSshd | undefined;
let drive: FakeDrive;

beforeAll(async () => {
  root = tempDir("cairn-roundtrip-");
  src = join(root, "src");
  await mkdir(src);
  makeTree(src, { bigBytes: 5 * MiB + 3 });
  [s3, ftp, drive] = await Promise.all([
    startS3Server(["roundtrip"]),
    startFtpServer({ tls: true }),
    startFakeDrive(),
  ]);
  if (!noSshd) sshd = await startSshd();
});
afterAll(async () => {
  await Promise.all([s3?.close(), ftp?.close(), sshd?.close(), drive?.close()]);
  await rm(root, { recursive: true, force: true });
});

const cases: [string, () => Promise<Destination>][] = [
  [
    "s3",
    async () =>
      new S3Destination({
        type: "s3",
        bucket: "roundtrip",
        prefix: "web-01",
        endpoint: s3.endpoint,
        region: "us-east-1",
        pathStyle: true,
        credentials: S3RVER_CREDENTIALS,
        partSize: 5 * MiB,
        queueSize: 2,
        retry: RETRY,
      }),
  ],
  [
    "ftps",
    async () => {
      await mkdir(join(ftp.root, "backups"), { recursive: true });
      return new FtpDestination({
        type: "ftp",
        secure: true,
        host: "127.0.0.1",
        port: ftp.port,
        user: ftp.user,
        password: ftp.password,
        path: "/backups",
        ca: ftp.cert,
        retry: RETRY,
      });
    },
  ],
  [
    "gdrive",
    async () =>
      new GdriveDestination({
        type: "gdrive",
        folderId: drive.rootId,
        tokens: {
          clientId: drive.clientId,
          clientSecret: drive.clientSecret,
          refreshToken: drive.refreshToken,
        },
        apiBase: drive.apiBase,
        uploadBase: drive.uploadBase,
        tokenUrl: drive.tokenUrl,
        chunkSize: MiB,
        retry: RETRY,
      }),
  ],
];

describe("encrypted backup to each remote destination, restored byte for byte", () => {
  const run = async (dest: Destination) => {
    const r = await createBackup({
      sources: [src],
      outDir: join(root, "unused"),
      name: "site",
      kind: "full",
      level: 3,
      encryption: KEY,
      binding: BINDING,
      destination: dest,
      chunkSize: 256 * 1024,
      scrypt: { N: 1024, r: 8, p: 1 },
    });
    expect((await dest.stat(r.fileName))?.size).toBe(r.size);
    await verifyArchive({ source: dest, fileName: r.fileName, key: KEY, scryptLimits: LIMITS });
    const target = join(root, `restore-${dest.url.replace(/[^a-z0-9]/gi, "_")}`);
    await restoreArchive({
      source: dest,
      fileName: r.fileName,
      target,
      key: KEY,
      binding: BINDING,
      scryptLimits: LIMITS,
    });
    expect(describeTree(join(target, "src"))).toEqual(describeTree(src));
    await dest.close();
  };

  for (const [label, open] of cases) it(label, async () => run(await open()));

  it.skipIf(noSshd !== undefined)("sftp", async () => {
    const s = sshd as TestSshd;
    await mkdir(join(s.dir, "backups"), { recursive: true });
    await run(
      new SftpDestination({
        type: "sftp",
        host: "127.0.0.1",
        port: s.port,
        user: s.user,
        path: join(s.dir, "backups"),
        privateKey: await readFile(s.userKey, "utf8"),
        tofuStorePath: join(s.dir, "tofu.json"),
        retry: RETRY,
      }),
    );
  });
});
