import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { describe, expect, it } from "vitest";
import { SqlClientCommandGuard } from "./sql-guard";

async function pass(sql: string, chunk = 7): Promise<string> {
  const parts: Buffer[] = [];
  const b = Buffer.from(sql);
  for (let i = 0; i < b.length; i += chunk) parts.push(b.subarray(i, i + chunk));
  return (await buffer(Readable.from(parts).pipe(new SqlClientCommandGuard()))).toString();
}

describe("SqlClientCommandGuard", () => {
  it("passes a real mariadb-dump shape unchanged, including the sandbox line and routines", async () => {
    const sql = [
      "/*M!999999\\- enable the sandbox mode */ ",
      "-- MariaDB dump 10.19 \\! in a comment is inert",
      "/*!40101 SET NAMES utf8mb4 */;",
      "INSERT INTO `t` VALUES (1,'it\\'s \\\\ a \\n line'),(2,'system touch /x'),(3,\"q\\\"\");",
      "DELIMITER ;;",
      "CREATE PROCEDURE p() BEGIN",
      "  SELECT 'use other';",
      "END ;;",
      "DELIMITER ;",
      "INSERT INTO `t` VALUES (4,'multi",
      "system touch /tmp/in-string');",
      "",
    ].join("\n");
    expect(await pass(sql)).toBe(sql);
  });

  it.each([
    ["\\! touch /tmp/pwned\n"],
    ["select 1;\n\\! touch /tmp/pwned\n"],
    ["system touch /tmp/pwned\n"],
    ["  SYSTEM touch /tmp/pwned\n"],
    ["source /etc/passwd\n"],
    ["use mysql;\n"],
    ["connect otherdb otherhost\n"],
    ["quit\n"],
    ["select 1; \\. /etc/passwd\n"],
    ["/*!50000 \\! id */;\n"],
    ["tee /tmp/out\n"],
  ])("refuses %j", async (sql) => {
    await expect(pass(`SELECT 'ok';\n${sql}`)).rejects.toMatchObject({ code: "UNSAFE_DUMP" });
  });

  it("never forwards the start of a refused line", async () => {
    const out: Buffer[] = [];
    const guard = new SqlClientCommandGuard();
    guard.on("data", (d: Buffer) => out.push(d));
    const err = new Promise((res) => guard.on("error", res));
    guard.write("SELECT 1;\nsys");
    guard.write("tem touch /tmp/x\n");
    expect(await err).toMatchObject({ code: "UNSAFE_DUMP" });
    expect(Buffer.concat(out).toString()).toBe("SELECT 1;\n");
  });
});
