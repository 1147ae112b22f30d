import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InventoryReport } from "../../../shared/protocol/runner-messages";
import { parseConfig } from "../config";
import { memoryLogger } from "../util/log";
import { RunnerDaemon } from "./daemon";
import { FakeControlPlane, makeRunnerConfig, makeSigningKey, type FakeConnection } from "./test-fixtures";

/** A hosting runner reports its inventory after `welcome` and again on `inventory.request`. */

let server: FakeControlPlane;
let daemon: RunnerDaemon;
let conn: FakeConnection;
let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "cairn-inv-daemon-"));
  const root = path.join(work, "host");
  execFileSync("node", ["/work/shared/bench/make-hosting-dataset.mjs", "--out", root, "--mib", "1"]);
  const r = await makeRunnerConfig(await makeSigningKey());
  server = await FakeControlPlane.start();
  const config = parseConfig({
    ...r.input,
    controlPlaneUrl: server.url,
    backupDir: path.join(work, "backups"),
    hosting: { root },
  });
  daemon = new RunnerDaemon({ config, handlers: {}, log: memoryLogger() });
  await daemon.start();
  conn = await server.connection(0);
  await server.message(conn, (m) => m.type === "hello");
});

afterAll(async () => {
  await daemon?.stop();
  await server?.close();
  await rm(work, { recursive: true, force: true });
});

describe("inventory report", () => {
  it("is sent after welcome, and again when the control plane asks", async () => {
    server.welcome(conn);
    const first = InventoryReport.parse(await server.message(conn, (m) => m.type === "inventory"));
    expect(first.domains.map((d) => d.domain)).toEqual(
      Array.from({ length: 8 }, (_, i) => `site${i}.example.com`),
    );
    expect(first.domains[0]).toMatchObject({ components: ["web", "mail", "dns", "ssl"], databases: [] });
    server.send(conn, { type: "inventory.request" });
    const count = () => conn.messages.filter((m) => m.type === "inventory").length;
    await server.message(conn, () => count() === 2, "second inventory");
    expect(count()).toBe(2);
  });
});
