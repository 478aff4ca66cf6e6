import Foundation
import Transport

// Lines about what an unauthenticated peer can cause (refused handshakes, dropped messages) are
// rate-limited, so a peer that sends 40,000 bad messages costs a few lines, not 40,000: at most
// one line per peer and topic ("refused", "dropped") per interval, and at most
// `linesPerInterval` such lines per interval in all. What is held back is counted and reported,
// with the peer's next line on the topic or by `flush`:
//
//   refused a worker: … (+N more from this peer since its last line)
//   +N more refused from peer P since its last line, the latest: refused a worker: …
//   +N more refused or dropped messages from other peers (over 20 lines in 5 s)

package struct RepeatedReports {
    package let intervalSeconds: Double
    package let linesPerInterval: Int

    private struct Entry {
        var lastLine: Double
        var heldBack: Int
        var latest: String
    }

    private struct Key: Hashable {
        var peer: PeerID
        var topic: String
    }

    private var entries: [Key: Entry] = [:]
    private var windowStart = -Double.infinity
    private var linesInWindow = 0
    /// Events held back because the interval's line budget was spent.
    private var heldBackOverBudget = 0

    package init(intervalSeconds: Double = 5, linesPerInterval: Int = 20) {
        self.intervalSeconds = intervalSeconds
        self.linesPerInterval = linesPerInterval
    }

    /// The line to print now for `line` about `peer`, or nil if it is held back (and counted).
    package mutating func report(_ line: String, topic: String, from peer: PeerID, at now: Double) -> String? {
        let key = Key(peer: peer, topic: topic)
        if now - windowStart >= intervalSeconds {
            windowStart = now
            linesInWindow = 0
        }
        if var entry = entries[key], now - entry.lastLine < intervalSeconds {
            entry.heldBack += 1
            entry.latest = line
            entries[key] = entry
            return nil
        }
        guard linesInWindow < linesPerInterval else {
            heldBackOverBudget += 1
            return nil
        }
        linesInWindow += 1
        let heldBack = entries[key]?.heldBack ?? 0
        entries[key] = Entry(lastLine: now, heldBack: 0, latest: line)
        return heldBack == 0 ? line : "\(line) (+\(heldBack) more from this peer since its last line)"
    }

    /// Lines for what was held back from peers whose last line is an interval old (`all`: from
    /// every peer); forgets peers with nothing held back whose interval has passed.
    package mutating func flush(at now: Double, all: Bool = false) -> [String] {
        var lines = [String]()
        for (key, entry) in entries {
            let intervalPassed = now - entry.lastLine >= intervalSeconds
            if entry.heldBack > 0 && (intervalPassed || all) {
                lines.append("+\(entry.heldBack) more \(key.topic) from peer \(Self.name(key.peer)) since its last line, "
                    + "the latest: \(entry.latest)")
                entries[key] = Entry(lastLine: now, heldBack: 0, latest: entry.latest)
            } else if entry.heldBack == 0 && intervalPassed {
                entries[key] = nil
            }
        }
        if heldBackOverBudget > 0 && (all || now - windowStart >= intervalSeconds) {
            lines.append("+\(heldBackOverBudget) more refused or dropped messages from other peers "
                + "(over \(linesPerInterval) lines in \(Int(intervalSeconds)) s)")
            heldBackOverBudget = 0
        }
        return lines
    }

    /// A peer's routing id as text when it is printable, else in hex (libzmq makes up binary
    /// ids for sockets that set none).
    package static func name(_ peer: PeerID) -> String {
        if !peer.bytes.isEmpty && peer.bytes.allSatisfy({ (0x20..<0x7f).contains($0) }) { return peer.description }
        return "0x" + peer.bytes.map { String(format: "%02x", $0) }.joined()
    }
}
