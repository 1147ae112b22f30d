/**
 * Password rules for password-mode archives, shared by the console (Worker, browser) and the
 * runner CLI: pure TypeScript, no Node or DOM imports.
 */
export const PASSWORD_MIN_LENGTH = 12;
export const PASSWORD_SPECIALS = "!@#$%^&*";

export type PasswordStrength = "weak" | "medium" | "strong";

export interface PasswordPolicyResult {
  ok: boolean;
  problems: string[];
}

export function checkPasswordPolicy(pw: string): PasswordPolicyResult {
  const problems: string[] = [];
  if ([...pw].length < PASSWORD_MIN_LENGTH) problems.push(`at least ${PASSWORD_MIN_LENGTH} characters`);
  if (!/[A-Z]/.test(pw)) problems.push("an upper-case letter");
  if (!/[a-z]/.test(pw)) problems.push("a lower-case letter");
  if (!/[0-9]/.test(pw)) problems.push("a digit");
  if (![...PASSWORD_SPECIALS].some((c) => pw.includes(c))) problems.push(`one of ${PASSWORD_SPECIALS}`);
  return { ok: problems.length === 0, problems };
}

/**
 * weak: fails the policy, or is mostly one repeated/sequential pattern.
 * strong: passes with >= 16 characters and >= 10 distinct characters. medium: everything else.
 */
export function passwordStrength(pw: string): PasswordStrength {
  if (!checkPasswordPolicy(pw).ok) return "weak";
  const chars = [...pw];
  const distinct = new Set(chars).size;
  if (distinct < 6) return "weak";
  let runs = 0;
  for (let i = 1; i < chars.length; i++) {
    const d = chars[i]!.codePointAt(0)! - chars[i - 1]!.codePointAt(0)!;
    if (d === 0 || d === 1 || d === -1) runs++;
  }
  if (runs >= chars.length * 0.6) return "weak";
  if (chars.length >= 16 && distinct >= 10) return "strong";
  return "medium";
}
