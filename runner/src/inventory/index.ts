export * from "./config";
export * from "./discover";
