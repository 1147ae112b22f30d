import { z } from "zod";

/** Roles, most to least privileged. ROOT administers the whole installation (all tenants). */
export const ROLES = ["ROOT", "ADMIN", "RESELLER", "USER"] as const;
export const Role = z.enum(ROLES);
export type Role = z.infer<typeof Role>;

export const PERMISSIONS = [
  "runners.read",
  "runners.enroll",
  "runners.revoke",
  "backups.read",
  "backups.create",
  "backups.restore",
  "backups.delete",
  "backups.download",
  "destinations.read",
  "destinations.manage",
  "schedules.read",
  "schedules.manage",
  "users.read",
  "users.manage",
  "activity.read",
  "settings.manage",
] as const;
export const Permission = z.enum(PERMISSIONS);
export type Permission = z.infer<typeof Permission>;

const ALL: readonly Permission[] = PERMISSIONS;

/**
 * What each role may do by default. Users may carry extra grants or revocations
 * (fine-grained permissions) on top; tenant scoping applies to everyone but ROOT.
 */
export const ROLE_PERMISSIONS: Record<Role, readonly Permission[]> = {
  ROOT: ALL,
  ADMIN: ALL.filter((p) => p !== "destinations.manage" && p !== "settings.manage"),
  RESELLER: [
    "runners.read",
    "backups.read",
    "backups.create",
    "backups.restore",
    "backups.download",
    "destinations.read",
    "schedules.read",
    "schedules.manage",
    "users.read",
    "users.manage",
    "activity.read",
  ],
  USER: [
    "runners.read",
    "backups.read",
    "backups.create",
    "backups.restore",
    "backups.download",
    "schedules.read",
  ],
};

export function hasPermission(
  role: Role,
  permission: Permission,
  overrides?: { grant?: readonly Permission[]; revoke?: readonly Permission[] },
): boolean {
  if (overrides?.revoke?.includes(permission)) return false;
  if (overrides?.grant?.includes(permission)) return true;
  return ROLE_PERMISSIONS[role].includes(permission);
}

/** Every permission a user holds: the role's defaults with the user's grants and revocations applied. */
export function effectivePermissions(
  role: Role,
  overrides?: { grant?: readonly Permission[]; revoke?: readonly Permission[] },
): Permission[] {
  return PERMISSIONS.filter((p) => hasPermission(role, p, overrides));
}
