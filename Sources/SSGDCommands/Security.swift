import ArgumentParser
import Transport
import Training

// CURVE security on the command line (DESIGN §5): `ssgd keygen`, and the option groups the
// coordinator and worker commands take (`@OptionGroup var security: SecurityOptions` /
// `WorkerSecurityOptions`). The groups only parse and load; SecurityPolicy decides whether a bind
// may proceed, and secureServer / secureClient configure the sockets.

struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Make a CURVE key pair for encrypted, authenticated cluster traffic.",
        discussion: """
            Writes DIR/NAME.key (the secret key, mode 0600: keep it on its machine) and DIR/NAME.pub \
            (the public key). Make one pair for the coordinator and one per worker; give every \
            worker the coordinator's .pub (--curve-server-key) and put the workers' .pub files in \
            the coordinator's allow-list directory (--curve-allow).
            """)

    @Option(name: .long, help: ArgumentHelp("Directory to write the key files to (created if missing).", valueName: "dir"))
    var output: String

    @Option(name: .long, help: ArgumentHelp("Base name of the key files.", valueName: "name"))
    var name = "ssgd"

    @Flag(name: .long, help: "Replace existing key files (holders of the old public key are then refused).")
    var force = false

    func run() throws {
        try reportingErrors {
            let paths = try CurveKeyFiles.generate(directory: output, name: name, force: force)
            Console.line("secret key: \(paths.secretKey) (mode 600 — keep it private)")
            Console.line("public key: \(paths.publicKey)")
            Console.line("  \(try CurveKeyFiles.loadPublicKey(paths.publicKey))")
        }
    }
}

/// The coordinator's security flags.
struct SecurityOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The coordinator's secret key (from ssgd keygen); enables CURVE encryption.", valueName: "file"))
    var curveSecretKey: String?

    @Option(name: .long, help: ArgumentHelp("Workers admitted: a directory of their .pub files, or a file with one public key per line.", valueName: "path"))
    var curveAllow: String?

    @Flag(name: .long, help: "Bind a non-loopback address without encryption or authentication (trusted networks only).")
    var insecure = false

    func validate() throws {
        if (curveSecretKey == nil) != (curveAllow == nil) {
            throw ValidationError("--curve-secret-key and --curve-allow go together: the coordinator needs its own secret key and the list of worker public keys it admits")
        }
        if insecure && curveSecretKey != nil {
            throw ValidationError("--insecure and --curve-secret-key exclude each other: with keys the traffic is encrypted")
        }
    }

    var hasKeys: Bool { curveSecretKey != nil }

    /// The coordinator's keys and allow-list, or nil without --curve-secret-key.
    func load() throws -> CurveServerSecurity? {
        guard let curveSecretKey, let curveAllow else { return nil }
        return try CurveServerSecurity.load(secretKeyPath: curveSecretKey, allowPath: curveAllow)
    }

    /// Whether binding `endpoint` may proceed with these flags (throws the reason if not).
    func check(bind endpoint: String) throws -> BindSecurity {
        try SecurityPolicy.check(bind: endpoint, hasKeys: hasKeys, insecure: insecure)
    }
}

/// A worker's security flags.
struct WorkerSecurityOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("This worker's secret key (from ssgd keygen); its .pub must be in the parent's allow-list (coordinator or aggregator).", valueName: "file"))
    var curveSecretKey: String?

    @Option(name: .long, help: ArgumentHelp("The parent's public key file (the coordinator's or aggregator's .pub from ssgd keygen).", valueName: "file"))
    var curveServerKey: String?

    func validate() throws {
        if (curveSecretKey == nil) != (curveServerKey == nil) {
            throw ValidationError("--curve-secret-key and --curve-server-key go together: a worker needs its own secret key and the coordinator's public key")
        }
    }

    /// The worker's keys and the coordinator's public key, or nil without --curve-secret-key.
    func load() throws -> CurveClientSecurity? {
        guard let curveSecretKey, let curveServerKey else { return nil }
        return try CurveClientSecurity.load(secretKeyPath: curveSecretKey, serverKeyPath: curveServerKey)
    }
}

/// An aggregator's security flags: one key pair, used towards its parent (with the parent's
/// public key) and towards its own workers (with their allow-list).
struct AggregatorSecurityOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("This aggregator's secret key (from ssgd keygen): its .pub goes in the parent's allow-list, and its workers name it with --curve-server-key.", valueName: "file"))
    var curveSecretKey: String?

    @Option(name: .long, help: ArgumentHelp("The parent's public key file (the coordinator's or parent aggregator's .pub).", valueName: "file"))
    var curveServerKey: String?

    @Option(name: .long, help: ArgumentHelp("Workers admitted: a directory of their .pub files, or a file with one public key per line.", valueName: "path"))
    var curveAllow: String?

    @Flag(name: .long, help: "Bind a non-loopback address without encryption or authentication (trusted networks only).")
    var insecure = false

    func validate() throws {
        if curveSecretKey == nil && (curveServerKey != nil || curveAllow != nil) {
            throw ValidationError("--curve-server-key and --curve-allow need --curve-secret-key: the aggregator's own secret key")
        }
        if curveSecretKey != nil && curveServerKey == nil && curveAllow == nil {
            throw ValidationError("--curve-secret-key needs --curve-server-key (the parent's public key), --curve-allow (the workers' keys), or both")
        }
        if insecure && curveAllow != nil {
            throw ValidationError("--insecure and --curve-allow exclude each other: with keys the workers' traffic is encrypted")
        }
    }

    /// Towards the parent: this aggregator's keys and the parent's public key (nil: plaintext).
    func loadClient() throws -> CurveClientSecurity? {
        guard let curveSecretKey, let curveServerKey else { return nil }
        return try CurveClientSecurity.load(secretKeyPath: curveSecretKey, serverKeyPath: curveServerKey)
    }

    /// Towards the workers: this aggregator's keys and their allow-list (nil: plaintext).
    func loadServer() throws -> CurveServerSecurity? {
        guard let curveSecretKey, let curveAllow else { return nil }
        return try CurveServerSecurity.load(secretKeyPath: curveSecretKey, allowPath: curveAllow)
    }

    /// Whether binding `endpoint` may proceed with these flags (throws the reason if not).
    func check(bind endpoint: String) throws -> BindSecurity {
        try SecurityPolicy.check(bind: endpoint, hasKeys: curveAllow != nil, insecure: insecure)
    }
}
