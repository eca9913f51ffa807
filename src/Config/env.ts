// Reading environment variables. Empty (or blank) values count as unset, so `FOO=` in a
// compose file does not override the TOML file with nothing.
export type Env = Readonly<Record<string, string | undefined>>

export const envValue = (env: Env, name: string): string | undefined => {
  const value = env[name]
  return value === undefined || value.trim() === "" ? undefined : value.trim()
}

/** Comma-separated list: entries trimmed, empty entries (a trailing comma) dropped. */
export const splitList = (value: string): Array<string> =>
  value.split(",").map((entry) => entry.trim()).filter((entry) => entry !== "")
