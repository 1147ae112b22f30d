export * from "./config";
export * from "./discover";
export * from "./report";
