// Which local process owns a TCP connection, found through /proc (Linux): the cluster tests use
// it to tell which gateway process a fake Discord connection belongs to (UpgradeRecord.remotePort
// is the client's port). Read while the connection is open; a closed socket has no owner.
import { readdirSync, readFileSync, readlinkSync } from "node:fs"

/** Inodes of the sockets whose local port is `port` (IPv4 and IPv6 tables). */
function socketInodes(port: number): Set<string> {
  const inodes = new Set<string>()
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0")
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string
    try {
      text = readFileSync(table, "utf8")
    } catch {
      continue
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/)
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      if (fields.length > 9 && fields[1]!.endsWith(`:${hexPort}`) && fields[9] !== "0") inodes.add(fields[9]!)
    }
  }
  return inodes
}

/** The pid holding the socket whose local TCP port is `port`, or undefined (closed, or not ours to see). */
export function pidOfLocalPort(port: number): number | undefined {
  const inodes = socketInodes(port)
  if (inodes.size === 0) return undefined
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    let fds: Array<string>
    try {
      fds = readdirSync(`/proc/${entry}/fd`)
    } catch {
      continue
    }
    for (const fd of fds) {
      try {
        const target = readlinkSync(`/proc/${entry}/fd/${fd}`)
        const m = /^socket:\[(\d+)\]$/.exec(target)
        if (m !== null && inodes.has(m[1]!)) return Number(entry)
      } catch {
        // The descriptor closed meanwhile.
      }
    }
  }
  return undefined
}
