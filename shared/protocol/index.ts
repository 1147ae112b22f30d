export * from "./version";
export * from "./job-claims";
export * from "./runner-messages";
export * from "./server-messages";
