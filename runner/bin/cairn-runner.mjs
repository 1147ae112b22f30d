#!/usr/bin/env node
// Package bin: runs the TypeScript CLI through tsx. Paths are relative to this file, so any cwd works.
import { register } from "tsx/esm/api";

register();
const { main } = await import(new URL("../src/cli.ts", import.meta.url).href);
let code;
try {
  code = await main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`ERROR ${err instanceof Error ? err.message : String(err)}\n`);
  code = 1;
}
process.exit(code);
