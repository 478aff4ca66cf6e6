import CCrypto

// SHA-256 (FIPS 180-4) from OpenSSL's libcrypto, the system library every Debian machine has:
// parameter hashes (bit-identity of runs), checkpoint checksums, config hashes and data set
// fingerprints. It replaced a hand-written implementation that hashed ~4 MB/s in debug builds
// (checkpoints of a 6M-parameter model took ~25 s in the tests); swift-crypto would do the
// same but adds ~3.5 minutes to a clean debug build here (measured, docs/ARCHITECTURE.md).

public struct SHA256 {
    /// Owns the OpenSSL digest context. A hasher is not meant to be copied mid-stream: copies
    /// share the context.
    private final class Context {
        let pointer: OpaquePointer

        init() {
            guard let context = EVP_MD_CTX_new(), EVP_DigestInit_ex(context, EVP_sha256(), nil) == 1 else {
                preconditionFailure("OpenSSL could not start a SHA-256 digest (out of memory?)")
            }
            pointer = context
        }

        deinit { EVP_MD_CTX_free(pointer) }
    }

    private var context = Context()

    public init() {}

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        EVP_DigestUpdate(context.pointer, base, bytes.count)
    }

    public mutating func update<T>(array: [T]) {
        array.withUnsafeBytes { update($0) }
    }

    public mutating func update(floats: UnsafePointer<Float>, count: Int) {
        update(UnsafeRawBufferPointer(start: floats, count: count * 4))
    }

    public mutating func update(string: String) {
        update(array: Array(string.utf8))
    }

    /// The 32-byte digest; the hasher starts over afterwards.
    public mutating func finalize() -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        digest.withUnsafeMutableBufferPointer { _ = EVP_DigestFinal_ex(context.pointer, $0.baseAddress, &length) }
        context = Context()
        return digest
    }

    public static func hex(_ digest: [UInt8]) -> String {
        digest.map { byte in
            let text = String(byte, radix: 16)
            return byte < 16 ? "0" + text : text
        }.joined()
    }

    public static func hash(string: String) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(string: string)
        return hasher.finalize()
    }

    public static func hash(floats: UnsafePointer<Float>, count: Int) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(floats: floats, count: count)
        return hasher.finalize()
    }
}
