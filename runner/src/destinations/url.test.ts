import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openDestination } from "./index";
import { DestinationError } from "./types";
import { parseDestinationUrl, redactUrl, specUrl } from "./url";

const dir = mkdtempSync(join(tmpdir(), "cairn-url-"));
const pw = join(dir, "pw");
writeFileSync(pw, "s3cr3t-pass\n");
const key = join(dir, "key");
writeFileSync(key, "-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n-----END OPENSSH PRIVATE KEY-----\n");
const tok = join(dir, "tok.json");
writeFileSync(tok, JSON.stringify({ clientId: "cid", clientSecret: "csecret", refreshToken: "rtoken" }));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const AWS = {
  AWS_ACCESS_KEY_ID: "AKIAEXAMPLE",
  AWS_SECRET_ACCESS_KEY: "aws-secret-value",
  AWS_SESSION_TOKEN: "sess",
};

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DestinationError);
    return (err as DestinationError).code;
  }
  throw new Error("expected a DestinationError");
}

describe("destination URLs", () => {
  it("parses file://", () => {
    expect(parseDestinationUrl("file:///var/backups/cairn")).toEqual({
      type: "file",
      path: "/var/backups/cairn",
    });
  });

  it("parses s3:// with flags and environment credentials", () => {
    const s = parseDestinationUrl(
      "s3://my-bucket/hosts/web-01",
      {
        s3Endpoint: "https://minio.local:9000",
        s3PathStyle: true,
        s3Region: "eu-west-1",
        s3StorageClass: "GLACIER_IR",
        s3Sse: "aws:kms",
      },
      AWS,
    );
    expect(s).toMatchObject({
      type: "s3",
      bucket: "my-bucket",
      prefix: "hosts/web-01",
      endpoint: "https://minio.local:9000",
      pathStyle: true,
      region: "eu-west-1",
      storageClass: "GLACIER_IR",
      sse: "aws:kms",
    });
    expect(s.type === "s3" && s.credentials).toEqual({
      accessKeyId: "AKIAEXAMPLE",
      secretAccessKey: "aws-secret-value",
      sessionToken: "sess",
    });
    expect(specUrl(s)).toBe("s3://my-bucket/hosts/web-01");
    expect(openDestination(s).url).not.toContain("aws-secret-value");
  });

  it("rejects bad S3 options and missing credentials", () => {
    expect(code(() => parseDestinationUrl("s3://b-1/x", { s3StorageClass: "COLD" }, AWS))).toBe(
      "PROTOCOL_ERROR",
    );
    expect(code(() => parseDestinationUrl("s3://b-1/x", {}, {}))).toBe("PROTOCOL_ERROR");
  });

  it("gs:// defaults to the GCS XML endpoint", () => {
    const s = parseDestinationUrl("gs://gbucket/p", {}, AWS);
    expect(s).toMatchObject({ type: "gcs", endpoint: "https://storage.googleapis.com", region: "auto" });
    expect(openDestination(s).url).toBe("gs://gbucket/p");
  });

  it("parses sftp:// with key file and known_hosts; secrets stay out of url", () => {
    const s = parseDestinationUrl("sftp://backup@host.example:2222/srv/backups", {
      sshKeyFile: key,
      sshKnownHostsFile: "/etc/ssh/kh",
    });
    expect(s).toMatchObject({
      type: "sftp",
      user: "backup",
      host: "host.example",
      port: 2222,
      path: "/srv/backups",
      knownHostsFile: "/etc/ssh/kh",
    });
    expect(openDestination(s).url).toBe("sftp://backup@host.example:2222/srv/backups");
    expect(code(() => parseDestinationUrl("sftp://backup@h/x", { sshKeyFile: key }))).toBe("PROTOCOL_ERROR"); // no host key source
    expect(code(() => parseDestinationUrl("sftp://backup@h/x", { sshTofuStore: "/s" }))).toBe(
      "PROTOCOL_ERROR",
    ); // no credential
  });

  it("parses ftp:// and ftps:// with a password file", () => {
    const s = parseDestinationUrl("ftps://u@ftp.example/backups", { passwordFile: pw });
    expect(s).toMatchObject({
      type: "ftp",
      secure: true,
      port: 21,
      user: "u",
      password: "s3cr3t-pass",
      path: "/backups",
    });
    expect(openDestination(s).url).toBe("ftps://u@ftp.example:21/backups");
  });

  it("refuses passwords inside the URL and never echoes them", () => {
    let msg = "";
    try {
      parseDestinationUrl("ftp://u:hunter2@h/x");
    } catch (err) {
      msg = (err as Error).message;
    }
    expect(msg).toContain("password");
    expect(msg).not.toContain("hunter2");
    expect(redactUrl("sftp://u:hunter2@h:22/x?token=abc")).toBe("sftp://u@h:22/x");
  });

  it("parses gdrive:// with a token file", () => {
    const s = parseDestinationUrl("gdrive://1AbC_dEf-123", { gdriveTokenFile: tok });
    expect(s).toMatchObject({ type: "gdrive", folderId: "1AbC_dEf-123", tokens: { refreshToken: "rtoken" } });
    expect(openDestination(s).url).toBe("gdrive://1AbC_dEf-123");
    expect(code(() => parseDestinationUrl("gdrive://x"))).toBe("PROTOCOL_ERROR");
    expect(
      code(() => parseDestinationUrl("gdrive://x", { gdriveTokenFile: join(dir, "missing.json") })),
    ).toBe("NOT_FOUND");
  });

  it("rejects unknown schemes", () => {
    expect(code(() => parseDestinationUrl("http://x/y"))).toBe("PROTOCOL_ERROR");
    expect(code(() => parseDestinationUrl("not a url"))).toBe("PROTOCOL_ERROR");
  });
});
