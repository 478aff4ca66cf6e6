import CZlib

// Reads a whole file that may be gzip-compressed or plain (zlib's gzread passes plain files
// through). A gzip stream that ends early is reported as a read error, not as short data.

enum CompressedFile {
    static func read(path: String, hint: String) throws -> [UInt8] {
        guard let file = gzopen(path, "rb") else {
            throw DataError.missing(path: path, hint: hint)
        }
        defer { gzclose(file) }
        var bytes = [UInt8]()
        let chunk = 1 << 20
        var buffer = [UInt8](repeating: 0, count: chunk)
        while true {
            let read = buffer.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32(chunk)) }
            if read < 0 {
                var code: Int32 = 0
                let message = gzerror(file, &code).map { String(cString: $0) } ?? "unknown zlib error"
                throw DataError.unreadable(path: path, reason: "corrupt or truncated compressed data (\(message))")
            }
            if read == 0 { break }
            bytes.append(contentsOf: buffer[0..<Int(read)])
        }
        // gzread reports a gzip stream cut short only through gzerror after EOF.
        var code: Int32 = 0
        let message = gzerror(file, &code).map { String(cString: $0) } ?? ""
        if code != Z_OK && code != Z_STREAM_END {
            throw DataError.unreadable(path: path, reason: "corrupt or truncated compressed data (\(message))")
        }
        return bytes
    }
}
