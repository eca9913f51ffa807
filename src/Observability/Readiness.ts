// Moved to src/Resilience/Readiness.ts (the supervisor reports there, and Resilience must not
// depend on Observability); kept so existing imports keep working.
export * from "../Resilience/Readiness.ts"
