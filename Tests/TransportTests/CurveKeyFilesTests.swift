import Transport
import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite("CURVE key files")
struct CurveKeyFilesTests {
    private static let z85Alphabet = Set(
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#")

    private func permissions(_ path: String) throws -> UInt32 {
        var info = stat()
        try #require(stat(path, &info) == 0, "stat \(path)")
        return UInt32(info.st_mode) & 0o777
    }

    private func contents(_ path: String) throws -> String {
        try String(contentsOfFile: path, encoding: .utf8)
    }

    private func isZ85Key(_ text: String) -> Bool {
        text.count == 40 && text.allSatisfy { Self.z85Alphabet.contains($0) }
    }

    private func writeFile(_ path: String, _ text: String, mode: mode_t) throws {
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        try #require(chmod(path, mode) == 0)
    }

    @Test("keygen writes a 0600 secret key and a 0644 public key in Z85 that load back as one pair")
    func keygenFilesRoundTrip() throws {
        let directory = Fixtures.temporaryDirectory("ssgd-keys") + "/nested/keys"
        let paths = try CurveKeyFiles.generate(directory: directory, name: "coordinator")
        #expect(paths.secretKey == directory + "/coordinator.key")
        #expect(paths.publicKey == directory + "/coordinator.pub")
        #expect(try permissions(paths.secretKey) == 0o600)
        #expect(try permissions(paths.publicKey) == 0o644)

        let secretText = try contents(paths.secretKey)
        let publicText = try contents(paths.publicKey)
        #expect(secretText.hasSuffix("\n") && publicText.hasSuffix("\n"))
        let secret = secretText.trimmingCharacters(in: .whitespacesAndNewlines)
        let publicKey = publicText.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(isZ85Key(secret), "secret key text: \(secret)")
        #expect(isZ85Key(publicKey), "public key text: \(publicKey)")
        #expect(secret != publicKey)

        let loaded = try CurveKeyFiles.loadSecretKey(paths.secretKey)
        #expect(loaded.secretKey == secret)
        #expect(loaded.publicKey == publicKey)
        #expect(try CurveKeyFiles.loadPublicKey(paths.publicKey) == publicKey)
        #expect(loaded == (try ZMQCurveKeyPair(secretKey: secret)))
    }

    @Test("keygen refuses to overwrite existing key files unless forced, and forced files keep their modes")
    func keygenRefusesOverwrite() throws {
        let directory = Fixtures.temporaryDirectory("ssgd-keys")
        let first = try CurveKeyFiles.generate(directory: directory, name: "worker")
        let before = try contents(first.secretKey)

        let error = try #require(throws: CurveKeyError.self) {
            try CurveKeyFiles.generate(directory: directory, name: "worker")
        }
        #expect(error == .fileExists(path: first.secretKey))
        #expect(error.description.contains("--force"))
        #expect(try contents(first.secretKey) == before)

        // Only the public file left over: still refused, and nothing new is written.
        try FileManager.default.removeItem(atPath: first.secretKey)
        #expect(throws: CurveKeyError.fileExists(path: first.publicKey)) {
            try CurveKeyFiles.generate(directory: directory, name: "worker")
        }
        #expect(!FileManager.default.fileExists(atPath: first.secretKey))

        let forced = try CurveKeyFiles.generate(directory: directory, name: "worker", force: true)
        #expect(try contents(forced.secretKey) != before)
        #expect(try permissions(forced.secretKey) == 0o600)
        #expect(try permissions(forced.publicKey) == 0o644)
        #expect(try CurveKeyFiles.loadSecretKey(forced.secretKey).publicKey == CurveKeyFiles.loadPublicKey(forced.publicKey))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.contains(".tmp-") }
        #expect(leftovers.isEmpty)
    }

    @Test("a key name with a slash or a leading dot is refused")
    func keygenRefusesBadNames() {
        let directory = Fixtures.temporaryDirectory("ssgd-keys")
        #expect(throws: CurveKeyError.invalidName("../evil")) { try CurveKeyFiles.generate(directory: directory, name: "../evil") }
        #expect(throws: CurveKeyError.invalidName(".hidden")) { try CurveKeyFiles.generate(directory: directory, name: ".hidden") }
        #expect(throws: CurveKeyError.invalidName("")) { try CurveKeyFiles.generate(directory: directory, name: "") }
    }

    @Test("a secret key file readable by group or others is refused with the chmod hint")
    func secretKeyPermissionsChecked() throws {
        let directory = Fixtures.temporaryDirectory("ssgd-keys")
        let paths = try CurveKeyFiles.generate(directory: directory, name: "coordinator")
        try #require(chmod(paths.secretKey, 0o644) == 0)
        let error = try #require(throws: CurveKeyError.self) { try CurveKeyFiles.loadSecretKey(paths.secretKey) }
        #expect(error == .insecurePermissions(path: paths.secretKey, mode: 0o644))
        #expect(error.description.contains("chmod 600 \(paths.secretKey)"))

        try #require(chmod(paths.secretKey, 0o640) == 0)
        #expect(throws: CurveKeyError.insecurePermissions(path: paths.secretKey, mode: 0o640)) {
            try CurveKeyFiles.loadSecretKey(paths.secretKey)
        }
        try #require(chmod(paths.secretKey, 0o400) == 0)
        #expect(try CurveKeyFiles.loadSecretKey(paths.secretKey).publicKey == CurveKeyFiles.loadPublicKey(paths.publicKey))
    }

    @Test("malformed key files are refused with an error naming the file")
    func malformedKeysNameTheFile() throws {
        let directory = Fixtures.temporaryDirectory("ssgd-keys")
        let shortPublic = directory + "/short.pub"
        try writeFile(shortPublic, "# a comment\nnot-a-key\n", mode: 0o644)
        let error = try #require(throws: CurveKeyError.self) { try CurveKeyFiles.loadPublicKey(shortPublic) }
        guard case .malformedKey(let path, let line, _) = error else {
            Issue.record("expected malformedKey, got \(error)")
            return
        }
        #expect(path == shortPublic && line == 2)
        #expect(error.description.contains("\(shortPublic):2"))

        let badSecret = directory + "/bad.key"
        try writeFile(badSecret, String(repeating: "~", count: 40) + "\n", mode: 0o600)
        let secretError = try #require(throws: CurveKeyError.self) { try CurveKeyFiles.loadSecretKey(badSecret) }
        #expect(secretError.description.contains(badSecret))
        #expect(secretError.description.contains("Z85"))

        let empty = directory + "/empty.pub"
        try writeFile(empty, "# nothing here\n\n", mode: 0o644)
        #expect(throws: CurveKeyError.malformedKey(path: empty, line: 0, reason: "the file holds no key")) {
            try CurveKeyFiles.loadPublicKey(empty)
        }

        let two = directory + "/two.pub"
        let a = try ZMQCurveKeyPair.generate().publicKey
        let b = try ZMQCurveKeyPair.generate().publicKey
        try writeFile(two, "\(a)\n\(b)\n", mode: 0o644)
        #expect(throws: CurveKeyError.self) { try CurveKeyFiles.loadPublicKey(two) }

        #expect(throws: CurveKeyError.self) { try CurveKeyFiles.loadPublicKey(directory + "/missing.pub") }
    }

    @Test("a stale NAME.pub next to NAME.key is reported as a mismatch")
    func mismatchedPublicKeyFile() throws {
        let directory = Fixtures.temporaryDirectory("ssgd-keys")
        let paths = try CurveKeyFiles.generate(directory: directory, name: "node")
        try writeFile(paths.publicKey, try ZMQCurveKeyPair.generate().publicKey + "\n", mode: 0o644)
        #expect(throws: CurveKeyError.keyMismatch(secretPath: paths.secretKey, publicPath: paths.publicKey)) {
            try CurveKeyFiles.loadSecretKey(paths.secretKey)
        }
    }

    @Test("an allow-list directory admits exactly its *.pub files")
    func allowListFromDirectory() throws {
        let directory = Fixtures.temporaryDirectory("ssgd-allow")
        let a = try CurveKeyFiles.generate(directory: directory, name: "worker-a")
        let b = try CurveKeyFiles.generate(directory: directory, name: "worker-b")
        try writeFile(directory + "/README.txt", "not a key\n", mode: 0o644)
        let list = try CurveKeyFiles.loadAllowList(directory)
        #expect(list.count == 2)
        #expect(list.contains(try CurveKeyFiles.loadPublicKey(a.publicKey)))
        #expect(list.contains(try CurveKeyFiles.loadPublicKey(b.publicKey)))
        // Secret keys lying in the same folder are not admitted as public keys.
        #expect(!list.contains(try CurveKeyFiles.loadSecretKey(a.secretKey).secretKey))

        try writeFile(directory + "/broken.pub", "xyz\n", mode: 0o644)
        let error = try #require(throws: CurveKeyError.self) { try CurveKeyFiles.loadAllowList(directory) }
        #expect(error.description.contains(directory + "/broken.pub"))

        let empty = Fixtures.temporaryDirectory("ssgd-allow-empty")
        #expect(throws: CurveKeyError.emptyAllowList(path: empty)) { try CurveKeyFiles.loadAllowList(empty) }
    }

    @Test("an allow-list text file holds one key per line, with comments and blank lines")
    func allowListFromTextFile() throws {
        let directory = Fixtures.temporaryDirectory("ssgd-allow")
        let a = try ZMQCurveKeyPair.generate().publicKey
        let b = try ZMQCurveKeyPair.generate().publicKey
        let outsider = try ZMQCurveKeyPair.generate().publicKey
        let path = directory + "/workers.txt"
        try writeFile(path, "# workers of the lab cluster\n\n  \(a)  \n# node 2\n\(b)\n", mode: 0o644)
        let list = try CurveKeyFiles.loadAllowList(path)
        #expect(list == CurveAllowList(keys: [a, b]))
        #expect(!list.contains(outsider))

        try writeFile(path, "\(a)\n\(b.dropLast())\n", mode: 0o644)
        #expect(throws: CurveKeyError.malformedKey(path: path, line: 2, reason: "39 characters instead of 40")) {
            try CurveKeyFiles.loadAllowList(path)
        }
        #expect(throws: CurveKeyError.self) { try CurveKeyFiles.loadAllowList(directory + "/missing.txt") }
    }
}
