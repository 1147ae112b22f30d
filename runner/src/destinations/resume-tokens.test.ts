/** Resume tokens never point a writer elsewhere; PrefixHash gives the sha256 of exactly the prefix asked. */
import { createHash, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { PrefixHash } from "./prefix-hash";
import {
  parseGdriveSessionToken,
  parseTempFileToken,
  resumeTokenBytes,
  suspendedTempToken,
} from "./resume-tokens";

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe("PrefixHash", () => {
  it("hashes any prefix inside the window, and refuses one that left it", () => {
    const data = randomBytes(10_000);
    const h = new PrefixHash(3_000);
    for (let off = 0; off < data.length; off += 700) h.update(data.subarray(off, off + 700));
    expect(h.length).toBe(10_000);
    for (const n of [7_000, 7_001, 8_500, 9_999, 10_000])
      expect(h.digestAt(n)).toBe(sha(data.subarray(0, n)));
    // Folded into the running hash: no longer available.
    expect(h.digestAt(5_000)).toBeUndefined();
    expect(h.digestAt(10_001)).toBeUndefined();
  });

  it("window 0 keeps only the last chunk", () => {
    const data = randomBytes(4_096);
    const h = new PrefixHash(0);
    h.update(data.subarray(0, 2_048));
    h.update(data.subarray(2_048));
    expect(h.digestAt(4_096)).toBe(sha(data));
    expect(h.digestAt(3_000)).toBe(sha(data.subarray(0, 3_000)));
    expect(h.digestAt(1_000)).toBeUndefined();
  });
});

describe("temp-file tokens", () => {
  const good = {
    kind: "sftp-temp",
    name: "a/b.tar.zst",
    temp: "/srv/backups/a/.b.tar.zst.part-0123456789ab",
    offset: 1024,
    sha256: "0".repeat(64),
  };
  const final = "/srv/backups/a/b.tar.zst";

  it("accepts the temp beside the final name", () => {
    expect(parseTempFileToken(good, "sftp-temp", "a/b.tar.zst", final)).toEqual(good);
    expect(resumeTokenBytes(good)).toBe(1024);
  });

  it.each([
    ["another directory", { temp: "/srv/other/.b.tar.zst.part-0123456789ab" }],
    ["a traversal", { temp: "/srv/backups/a/../.b.tar.zst.part-0123456789ab" }],
    ["another object's temp", { temp: "/srv/backups/a/.c.tar.zst.part-0123456789ab" }],
    ["a non-temp name", { temp: "/srv/backups/a/b.tar.zst" }],
    ["another object", { name: "a/c.tar.zst" }],
    ["the other protocol", { kind: "ftp-temp" }],
    ["a zero offset", { offset: 0 }],
    ["a malformed hash", { sha256: "xyz" }],
  ])("refuses %s", (_what, change) => {
    expect(parseTempFileToken({ ...good, ...change }, "sftp-temp", "a/b.tar.zst", final)).toBeUndefined();
  });
});

describe("suspended temp-file tokens (discard)", () => {
  const token = {
    kind: "ftp-temp",
    name: "b.tar.zst",
    temp: "/srv/backups/.b.tar.zst.part-0123456789ab",
    offset: 10,
    sha256: "0".repeat(64),
  };
  const path = (n: string) => {
    if (n.split("/").includes("..")) throw new Error("invalid object name");
    return `/srv/backups/${n}`;
  };

  it("names the temp beside the object the token is for", () => {
    expect(suspendedTempToken(token, "ftp-temp", path)).toEqual(token);
  });

  it.each([
    ["an invalid object name", { name: "../b.tar.zst" }],
    ["no name", { name: undefined }],
    ["a temp elsewhere", { temp: "/etc/.b.tar.zst.part-0123456789ab" }],
    ["the other protocol", { kind: "sftp-temp" }],
  ])("refuses %s", (_what, change) => {
    expect(suspendedTempToken({ ...token, ...change }, "ftp-temp", path)).toBeUndefined();
  });

  it("refuses a token that is not an object", () => {
    expect(suspendedTempToken(null, "ftp-temp", path)).toBeUndefined();
    expect(suspendedTempToken("x", "ftp-temp", path)).toBeUndefined();
  });
});

describe("Drive session tokens", () => {
  const base = "https://www.googleapis.com/upload/drive/v3";
  const good = {
    kind: "gdrive-session",
    name: "b.tar.zst",
    session: `${base}/files?uploadType=resumable&upload_id=ABC`,
    offset: 8 * 1024 * 1024,
  };

  it("accepts a session of this Drive API for this object", () => {
    expect(parseGdriveSessionToken(good, "b.tar.zst", base)).toEqual(good);
    expect(resumeTokenBytes(good)).toBe(8 * 1024 * 1024);
  });

  it.each([
    ["another host", "https://evil.example/upload/drive/v3/files?upload_id=ABC"],
    ["another path", `https://www.googleapis.com/drive/v3/files?upload_id=ABC`],
    ["no upload id", `${base}/files?uploadType=resumable`],
  ])("refuses %s", (_what, session) => {
    expect(parseGdriveSessionToken({ ...good, session }, "b.tar.zst", base)).toBeUndefined();
  });

  it("refuses another object's session, and counts unknown tokens as 0 bytes", () => {
    expect(parseGdriveSessionToken(good, "c.tar.zst", base)).toBeUndefined();
    expect(resumeTokenBytes({ kind: "nope" })).toBe(0);
  });
});
