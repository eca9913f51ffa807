// Moved to src/Config/safeUrl.ts (Broker and Redis use it and must not depend on Observability);
// kept so existing imports keep working.
export * from "../Config/safeUrl.ts"
