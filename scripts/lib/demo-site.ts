/** A small demo hosting tree so a fresh `npm start` has something real to back up. */
import { mkdirSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";

export function ensureDemoSite(dir: string): void {
  if (existsSync(join(dir, "example.com"))) return;
  const site = join(dir, "example.com", "public_html");
  mkdirSync(join(site, "assets"), { recursive: true });
  writeFileSync(
    join(site, "index.html"),
    "<!doctype html><title>example.com</title><h1>Hello from a Cairn demo site</h1>\n",
  );
  writeFileSync(join(site, "assets", "style.css"), "body { font-family: sans-serif; }\n".repeat(50));
  writeFileSync(
    join(site, "wp-config.php"),
    "<?php\ndefine('DB_NAME', 'example');\ndefine('DB_HOST', 'localhost');\n",
  );
  const logs = join(dir, "example.com", "logs");
  mkdirSync(logs, { recursive: true });
  const lines: string[] = [];
  for (let i = 0; i < 2000; i++) {
    lines.push(
      `203.0.113.${i % 250} - - [21/Nov/2026:10:00:${String(i % 60).padStart(2, "0")} +0000] "GET /page/${i} HTTP/1.1" 200 ${1000 + i}`,
    );
  }
  writeFileSync(join(logs, "access.log"), lines.join("\n") + "\n");
}
