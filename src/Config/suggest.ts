// "Did you mean" suggestions for misspelt keys, intents and enum values.

/** Levenshtein distance, case-insensitive (config names are compared without case). */
export const editDistance = (a: string, b: string): number => {
  const s = a.toLowerCase()
  const t = b.toLowerCase()
  let prev = Array.from({ length: t.length + 1 }, (_, j) => j)
  for (let i = 1; i <= s.length; i++) {
    const row = [i]
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost)
    }
    prev = row
  }
  return prev[t.length]!
}

/**
 * The candidate closest to `input`, or undefined when none is plausibly what was meant.
 * Best is a candidate that extends the input ("GUILD" → "GUILDS", "GUILD_MESS" → "GUILD_MESSAGES"),
 * then one that contains it or that it extends ("PRESENCES" → "GUILD_PRESENCES", "warning" → "warn"),
 * then a near spelling (about one typo per three characters). Ties keep list order.
 */
export const closest = (input: string, candidates: Iterable<string>): string | undefined => {
  const needle = input.trim().toLowerCase()
  if (needle.length === 0) return undefined
  const limit = Math.max(2, Math.floor(needle.length / 3))
  let best: string | undefined
  let bestScore = Infinity
  for (const candidate of candidates) {
    const lower = candidate.toLowerCase()
    const distance = editDistance(needle, lower)
    // Distance only orders candidates within the first two tiers (it never exceeds ~100 here).
    const score = needle.length >= 3 && lower.startsWith(needle)
      ? distance / 100
      : (needle.length >= 4 && lower.includes(needle)) || (lower.length >= 3 && needle.startsWith(lower))
      ? 0.5 + distance / 200
      : distance <= limit
      ? distance
      : Infinity
    if (score < bestScore) {
      best = candidate
      bestScore = score
    }
  }
  return best
}

/** ` (did you mean "x"?)`, or "" when there is no plausible suggestion. */
export const didYouMean = (input: string, candidates: Iterable<string>): string => {
  const match = closest(input, candidates)
  return match === undefined ? "" : ` (did you mean "${match}"?)`
}
