import Data
import Testing
import Training

@Suite struct SHA256Tests {
    // Vectors from FIPS 180-4's examples (also `printf abc | sha256sum`).
    @Test func knownVectors() {
        #expect(SHA256.hex(SHA256.hash(string: "")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(SHA256.hash(string: "abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex(SHA256.hash(string: "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))
            == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    @Test func incrementalUpdatesEqualOneShot() {
        let text = String(repeating: "spectral norm ", count: 97)
        var hasher = SHA256()
        let bytes = Array(text.utf8)
        var offset = 0
        for size in [1, 63, 64, 65, 200, 7] where offset < bytes.count {
            let end = min(offset + size, bytes.count)
            hasher.update(array: Array(bytes[offset..<end]))
            offset = end
        }
        hasher.update(array: Array(bytes[offset...]))
        #expect(hasher.finalize() == SHA256.hash(string: text))
    }
}
