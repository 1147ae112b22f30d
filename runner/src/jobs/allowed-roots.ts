import { realpath } from "node:fs/promises";
import path from "node:path";
import { JobRejectCode } from "../../../shared/errors";
import { JobRejection } from "../daemon/job-verifier";

/**
 * A signed job is still only a request: the runner decides which parts of its disk the control plane
 * may read or write. Paths are compared after resolving symlinks, so `/srv/site/link -> /etc` is outside.
 */

function isInside(child: string, root: string): boolean {
  const rel = path.relative(root, child);
  return rel === "" || (rel !== ".." && !rel.startsWith(".." + path.sep) && !path.isAbsolute(rel));
}

async function resolvedRoots(roots: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const r of roots) {
    try {
      out.push(await realpath(r));
    } catch {
      // a root that does not exist allows nothing
    }
  }
  return out;
}

/** Resolves an existing source; returns its real path. */
export async function resolveAllowedSource(source: string, allowedRoots: string[]): Promise<string> {
  if (!path.isAbsolute(source))
    throw new JobRejection(JobRejectCode.SourceNotAllowed, `source ${source} is not absolute`);
  let real: string;
  try {
    real = await realpath(source);
  } catch {
    throw new JobRejection(JobRejectCode.SourceNotAllowed, `source ${source} does not exist on this runner`);
  }
  const roots = await resolvedRoots(allowedRoots);
  if (!roots.some((r) => isInside(real, r))) {
    throw new JobRejection(
      JobRejectCode.SourceNotAllowed,
      `source ${source} is outside this runner's allowed roots`,
    );
  }
  return real;
}

/**
 * Resolves a restore target that may not exist yet: its nearest existing ancestor is resolved and
 * the rest appended, so a symlinked parent cannot carry the write outside the allowed roots.
 */
export async function resolveAllowedTarget(target: string, allowedRoots: string[]): Promise<string> {
  if (!path.isAbsolute(target))
    throw new JobRejection(JobRejectCode.SourceNotAllowed, `target ${target} is not absolute`);
  let existing = path.resolve(target);
  const rest: string[] = [];
  for (;;) {
    try {
      existing = await realpath(existing);
      break;
    } catch {
      const parent = path.dirname(existing);
      if (parent === existing)
        throw new JobRejection(JobRejectCode.SourceNotAllowed, `target ${target} cannot be resolved`);
      rest.unshift(path.basename(existing));
      existing = parent;
    }
  }
  const real = path.join(existing, ...rest);
  const roots = await resolvedRoots(allowedRoots);
  if (!roots.some((r) => isInside(real, r))) {
    throw new JobRejection(
      JobRejectCode.SourceNotAllowed,
      `target ${target} is outside this runner's allowed roots`,
    );
  }
  return real;
}
