import { describe, expect, it } from "vitest";
import { checkPasswordPolicy, passwordStrength } from "./password-policy";

describe("password policy", () => {
  it("names each missing requirement", () => {
    expect(checkPasswordPolicy("short").problems).toEqual([
      "at least 12 characters",
      "an upper-case letter",
      "a digit",
      "one of !@#$%^&*",
    ]);
    expect(checkPasswordPolicy("alllowercase1!").problems).toEqual(["an upper-case letter"]);
    expect(checkPasswordPolicy("ALLUPPERCASE1!").problems).toEqual(["a lower-case letter"]);
    expect(checkPasswordPolicy("NoDigitsHere!!").problems).toEqual(["a digit"]);
    expect(checkPasswordPolicy("NoSpecials1234").problems).toEqual(["one of !@#$%^&*"]);
    expect(checkPasswordPolicy("Hosting-Key1!")).toEqual({ ok: true, problems: [] });
  });
  it("grades strength", () => {
    expect(passwordStrength("abc")).toBe("weak");
    expect(passwordStrength("Aa1!Aa1!Aa1!")).toBe("weak");
    expect(passwordStrength("Abcdefgh123!")).toBe("weak");
    expect(passwordStrength("Hosting-Key1!")).toBe("medium");
    expect(passwordStrength("Tr0ub4dor&3-Horse!Staple")).toBe("strong");
  });
});
