import Data
import Engine
import Foundation
import Training

// Checkpoint file, format version 1, little-endian:
//   "SSGDCKPT" | version UInt32 | header length UInt32 | header (JSON, UTF-8)
//   | sections: float32 arrays in header order | SHA-256 of all preceding bytes (32 bytes)
// The header records step, config hash, seed and each section's name and float count. The
// method's persistent state (TrainingMethod.state) is the section "spectral_vectors", its name
// from when spectral `v` was the only such state (kept so older checkpoints still load). A file
// whose checksum, magic, version, sizes or config hash do not match is refused with a reason.

public struct CheckpointHeader: Codable, Equatable, Sendable {
    public var step: Int
    public var epoch: Int
    public var configHash: String
    public var seed: UInt64
    /// The fingerprint of the data the run trained on (absent in checkpoints written before it
    /// was recorded, and in an import's step-0 checkpoint, which has trained on nothing yet).
    public var dataFingerprint: String?
    public var sections: [Section]

    public struct Section: Codable, Equatable, Sendable {
        public var name: String
        public var count: Int
    }

    enum CodingKeys: String, CodingKey {
        case step, epoch, seed, sections
        case configHash = "config_hash"
        case dataFingerprint = "data_fingerprint"
    }
}

public enum CheckpointError: Error, CustomStringConvertible {
    case corrupt(path: String, reason: String)
    case mismatch(path: String, reason: String)
    /// The checkpoint was trained on data with another fingerprint.
    case otherData(path: String, saved: String, current: String)
    /// `skipped`: why each checkpoint found was not usable.
    case noneFound(directory: String, skipped: [String] = [])

    public var description: String {
        switch self {
        case .corrupt(let path, let reason): return "checkpoint \(path) is corrupt: \(reason)"
        case .mismatch(let path, let reason): return "checkpoint \(path) does not fit this run: \(reason)"
        case .otherData(let path, let saved, let current):
            return "checkpoint \(path) was trained on data with fingerprint \(saved.prefix(16))…, but the data now found has "
                + "fingerprint \(current.prefix(16))… (other files, or files changed in place). A run continues only on its own data; "
                + "to train these weights on other data, start a new run from them: ssgd export RUN_DIR --format safetensors "
                + "--output weights.safetensors, then ssgd import weights.safetensors --config CONFIG"
        case .noneFound(let directory, let skipped):
            return "no usable checkpoint in \(directory)" + skipped.map { "; \($0)" }.joined()
        }
    }
}

public enum Checkpoint {
    static let magic = Array("SSGDCKPT".utf8)
    public static let formatVersion: UInt32 = 1

    public static func fileName(step: Int) -> String {
        let digits = String(step)
        return "step-" + String(repeating: "0", count: max(0, 9 - digits.count)) + digits + ".ckpt"
    }

    public static func write(
        _ state: TrainingState, configHash: String, seed: UInt64, dataFingerprint: String? = nil, to path: String
    ) throws {
        let sections: [(String, FloatBuffer)] = [
            ("parameters", state.parameters), ("momentum", state.momentum),
            ("normalization_state", state.normalizationState), ("spectral_vectors", state.methodState),
        ]
        let header = CheckpointHeader(
            step: state.step, epoch: state.epoch, configHash: configHash, seed: seed, dataFingerprint: dataFingerprint,
            sections: sections.map { .init(name: $0.0, count: $0.1.count) })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let headerBytes = Array(try encoder.encode(header))
        let writer = try AtomicFileWriter(path: path)
        var hasher = SHA256()
        func emit(_ bytes: [UInt8]) throws {
            hasher.update(array: bytes)
            try writer.write(bytes)
        }
        try emit(magic)
        try emit(littleEndian(formatVersion))
        try emit(littleEndian(UInt32(headerBytes.count)))
        try emit(headerBytes)
        for (_, buffer) in sections {
            let raw = UnsafeRawBufferPointer(start: buffer.pointer, count: buffer.count * 4)
            hasher.update(raw)
            try writer.write(raw)
        }
        try writer.write(hasher.finalize())
        try writer.commit()
    }

    /// Read and verify a checkpoint; sizes must match the given expectations, and the data
    /// fingerprint (when both the file and the caller have one) must match too.
    public static func read(
        path: String, configHash: String, parameterCount: Int, stateCount: Int, methodStateCount: Int,
        dataFingerprint: String? = nil
    ) throws -> TrainingState {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CheckpointError.corrupt(path: path, reason: "cannot be read")
        }
        let bytes = [UInt8](data)
        guard bytes.count >= magic.count + 8 + 32 else { throw CheckpointError.corrupt(path: path, reason: "too short (\(bytes.count) bytes)") }
        guard Array(bytes[0..<8]) == magic else { throw CheckpointError.corrupt(path: path, reason: "not an ssgd checkpoint (bad magic)") }
        let body = bytes.count - 32
        var hasher = SHA256()
        bytes.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<body])) }
        guard hasher.finalize() == Array(bytes[body...]) else {
            throw CheckpointError.corrupt(path: path, reason: "checksum mismatch (partly written or damaged)")
        }
        let version = readLittleEndian(bytes, 8)
        guard version == formatVersion else {
            throw CheckpointError.corrupt(path: path, reason: "format version \(version), this build reads \(formatVersion)")
        }
        let headerLength = Int(readLittleEndian(bytes, 12))
        guard 16 + headerLength <= body else { throw CheckpointError.corrupt(path: path, reason: "header length \(headerLength) past the end") }
        let header: CheckpointHeader
        do {
            header = try JSONDecoder().decode(CheckpointHeader.self, from: Data(bytes[16..<(16 + headerLength)]))
        } catch {
            throw CheckpointError.corrupt(path: path, reason: "unreadable header (\(error))")
        }
        guard header.configHash == configHash else {
            throw CheckpointError.mismatch(
                path: path, reason: "it was written with another training config (hash \(header.configHash.prefix(12))…, this run \(configHash.prefix(12))…)")
        }
        if let saved = header.dataFingerprint, let dataFingerprint, saved != dataFingerprint {
            throw CheckpointError.otherData(path: path, saved: saved, current: dataFingerprint)
        }
        let expected = ["parameters": parameterCount, "momentum": parameterCount, "normalization_state": stateCount, "spectral_vectors": methodStateCount]
        var buffers = [String: FloatBuffer]()
        var offset = 16 + headerLength
        for section in header.sections {
            guard let want = expected[section.name] else { throw CheckpointError.corrupt(path: path, reason: "unknown section \(section.name)") }
            guard section.count == want else {
                throw CheckpointError.mismatch(path: path, reason: "section \(section.name) holds \(section.count) values, the model needs \(want)")
            }
            guard offset + 4 * section.count <= body else { throw CheckpointError.corrupt(path: path, reason: "section \(section.name) runs past the end") }
            let buffer = FloatBuffer(count: section.count)
            bytes.withUnsafeBytes { raw in
                UnsafeMutableRawPointer(buffer.pointer).copyMemory(from: raw.baseAddress! + offset, byteCount: 4 * section.count)
            }
            buffers[section.name] = buffer
            offset += 4 * section.count
        }
        guard offset == body, let parameters = buffers["parameters"], let momentum = buffers["momentum"],
              let normalization = buffers["normalization_state"], let spectral = buffers["spectral_vectors"]
        else { throw CheckpointError.corrupt(path: path, reason: "sections missing or trailing bytes") }
        return TrainingState(
            step: header.step, epoch: header.epoch, parameters: parameters, momentum: momentum,
            normalizationState: normalization, methodState: spectral)
    }

    /// Checkpoint files in a folder, newest step first.
    public static func list(directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasPrefix("step-") && $0.hasSuffix(".ckpt") }.sorted(by: >)
            .map { (directory as NSString).appendingPathComponent($0) }
    }

    private static func littleEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value & 0xFF), UInt8((value >> 8) & 0xFF), UInt8((value >> 16) & 0xFF), UInt8(value >> 24)]
    }

    private static func readLittleEndian(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
    }
}
