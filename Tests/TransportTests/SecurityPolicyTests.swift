import Transport
import Testing

@Suite("Bind security policy")
struct SecurityPolicyTests {
    /// Endpoints and whether their traffic stays on this machine.
    static let endpoints: [(endpoint: String, local: Bool)] = [
        ("ipc:///tmp/ssgd-test.sock", true),
        ("inproc://ssgd", true),
        ("tcp://127.0.0.1:5555", true),
        ("tcp://127.0.0.1:*", true),
        ("tcp://127.5.5.5:5555", true),
        ("tcp://localhost:5555", true),
        ("tcp://LOCALHOST:5555", true),
        ("tcp://[::1]:5555", true),
        ("tcp://[::ffff:127.0.0.1]:5555", true),
        ("tcp://0.0.0.0:5555", false),
        ("tcp://10.1.2.3:5555", false),
        ("tcp://128.0.0.1:5555", false),
        ("tcp://*:5555", false),
        ("tcp://[::]:5555", false),
        ("tcp://eth0:5555", false),
        ("tcp://node7.cluster.example.org:5555", false),
        ("tcp://127.0.0.1.evil.example:5555", false),
        ("tcp://localhost.example.org:5555", false),
        ("tcp://[::1:5555", false),
        ("pgm://eth0;239.192.1.1:5555", false),
    ]

    @Test("decision for every endpoint × keys × --insecure", arguments: endpoints)
    func decisionTable(_ row: (endpoint: String, local: Bool)) throws {
        #expect(SecurityPolicy.isLocal(row.endpoint) == row.local)
        for hasKeys in [false, true] {
            for insecure in [false, true] {
                let decision = SecurityPolicy.decide(bind: row.endpoint, hasKeys: hasKeys, insecure: insecure)
                let context = "\(row.endpoint) keys=\(hasKeys) insecure=\(insecure): \(decision)"
                switch (hasKeys, row.local, insecure) {
                case (true, _, _):
                    #expect(decision == .encrypted, "\(context)")
                case (false, true, _):
                    #expect(decision == .local, "\(context)")
                case (false, false, true):
                    guard case .insecure(let warning) = decision else {
                        Issue.record("expected insecure, \(context)")
                        continue
                    }
                    #expect(warning.contains(row.endpoint), "\(context)")
                case (false, false, false):
                    guard case .refused(let reason) = decision else {
                        Issue.record("expected refused, \(context)")
                        continue
                    }
                    for hint in ["ssgd keygen", "--curve-secret-key", "--curve-allow", "--insecure", row.endpoint] {
                        #expect(reason.contains(hint), "missing '\(hint)' in \(context)")
                    }
                }
                #expect(decision.proceeds == (hasKeys || row.local || insecure), "\(context)")
                if decision.proceeds {
                    #expect(try SecurityPolicy.check(bind: row.endpoint, hasKeys: hasKeys, insecure: insecure) == decision)
                } else {
                    #expect(throws: SecurityPolicyError.self, "\(context)") {
                        try SecurityPolicy.check(bind: row.endpoint, hasKeys: hasKeys, insecure: insecure)
                    }
                }
            }
        }
    }
}
