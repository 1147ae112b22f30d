/** Object names as every destination accepts them: relative, no traversal, no control characters. */
import { DestinationError } from "./types";

export function checkObjectName(destination: string, name: string): string {
  const bad =
    name.length === 0 ||
    name.length > 1024 ||
    name.startsWith("/") ||
    name.includes("\\") ||
    [...name].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f) ||
    name.split("/").some((seg) => seg === "" || seg === "." || seg === "..");
  if (bad)
    throw new DestinationError("PROTOCOL_ERROR", destination, `invalid object name ${JSON.stringify(name)}`);
  return name;
}

/** `a/b` or `a/b/` or `` → `a/b/` or `` (a key prefix that ends with one slash). */
export function normalizePrefix(prefix: string): string {
  const p = prefix.replace(/^\/+/, "").replace(/\/+$/, "");
  return p === "" ? "" : `${p}/`;
}

/** Temp names start with a dot and carry `.part-` so listings can skip half-written objects. */
export function isTempName(name: string): boolean {
  const base = name.slice(name.lastIndexOf("/") + 1);
  return base.startsWith(".") && base.includes(".part-");
}
