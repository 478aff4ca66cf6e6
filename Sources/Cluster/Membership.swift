import Transport

// The coordinator's view of who is in the run: the workers that completed the handshake and
// have not died, in joining order, each with its index (counted up, never reused) and when it
// was last heard from on any channel. Dying is decided here (silence) or by the coordinator
// (unreachable, an error, an invalid result); a dead worker that comes back handshakes again
// and becomes a new member.

struct Member: Sendable {
    let peer: PeerID
    let name: String
    let index: UInt32
    var lastSeen: Double
    /// The OpenBLAS kernel it said it computes with.
    let blasCore: String
    /// The lanes it said it computes on (for an aggregator: its workers when it joined).
    let lanes: Int
    /// Whether it said it can take a task's units from one end as they are granted (TaskEnd).
    var canMeet = false
}

struct Membership {
    private(set) var members: [Member] = []
    private var nextIndex: UInt32 = 0

    var count: Int { members.count }
    var isEmpty: Bool { members.isEmpty }
    var names: [String] { members.map(\.name) }

    func position(of peer: PeerID) -> Int? { members.firstIndex { $0.peer == peer } }
    func contains(_ peer: PeerID) -> Bool { position(of: peer) != nil }

    /// Notes that `peer` was heard from; false if it is not a member.
    mutating func heard(from peer: PeerID, at now: Double) -> Bool {
        guard let position = position(of: peer) else { return false }
        members[position].lastSeen = now
        return true
    }

    /// Admits `peer` (replacing an earlier membership of it) under the next index, if `welcome`
    /// — which gets that index — does not throw.
    mutating func admit(
        _ peer: PeerID, name: String, blasCore: String, lanes: Int = 1, canMeet: Bool = false, at now: Double,
        welcome: (UInt32) throws -> Void
    ) throws -> Member {
        remove(peer)
        let member = Member(
            peer: peer, name: name, index: nextIndex, lastSeen: now, blasCore: blasCore, lanes: max(1, lanes), canMeet: canMeet)
        nextIndex += 1
        try welcome(member.index)
        members.append(member)
        return member
    }

    @discardableResult
    mutating func remove(_ peer: PeerID) -> Member? {
        guard let position = position(of: peer) else { return nil }
        return members.remove(at: position)
    }

    /// The members silent for longer than `timeout` seconds.
    func silent(timeout: Double, at now: Double) -> [Member] {
        members.filter { now - $0.lastSeen > timeout }
    }
}
