import Engine
import Foundation

// Hugging Face safetensors, the float32 subset ssgd reads and writes:
//   header length N (UInt64, little-endian) | header (N bytes of UTF-8 JSON, may end in spaces)
//   | data (little-endian tensors, back to back)
// header = {"NAME": {"dtype": "F32", "shape": [d0, d1, …], "data_offsets": [begin, end]}, …,
//           "__metadata__": {"key": "value", …}}
// Offsets count bytes from the start of the data; the tensors cover the data exactly, with no
// gap and no overlap. A network is written under its PyTorch names and shapes (parameterTable,
// then stateTable), so `torch.nn.Module.load_state_dict` reads it (strict=False: ssgd writes no
// `num_batches_tracked`).
// Decoding checks everything above and refuses a file with a reason. Tensors of other dtypes
// are checked for size and then set aside by name (`otherTensors`); only F32 ones can be read.

public struct SafetensorsTensor: Equatable, Sendable {
    public var name: String
    /// PyTorch shape, e.g. [out, in, kh, kw]; [] is a scalar.
    public var shape: [Int]
    /// Row-major values, shape.product of them.
    public var values: [Float]

    public init(name: String, shape: [Int], values: [Float]) {
        precondition(
            values.count == shape.reduce(1, *),
            "tensor \(name): \(values.count) values for shape \(shape)")
        self.name = name
        self.shape = shape
        self.values = values
    }
}

public struct SafetensorsFile: Equatable, Sendable {
    /// The F32 tensors, in the order of their data.
    public var tensors: [SafetensorsTensor]
    public var metadata: [String: String]
    /// Tensors of another dtype, name → dtype (e.g. PyTorch's I64 `num_batches_tracked`).
    public var otherTensors: [String: String]

    public init(tensors: [SafetensorsTensor], metadata: [String: String] = [:], otherTensors: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
        self.otherTensors = otherTensors
    }

    public subscript(name: String) -> SafetensorsTensor? { tensors.first { $0.name == name } }
}

public enum SafetensorsError: Error, CustomStringConvertible, Equatable {
    /// The bytes are not a valid safetensors file.
    case malformed(reason: String)
    case unreadable(path: String, reason: String)
    /// The file is valid but does not fit the network.
    case missingTensor(name: String)
    case wrongShape(name: String, file: [Int], expected: [Int])
    case wrongDtype(name: String, dtype: String)
    case unexpectedTensor(name: String)

    public var description: String {
        switch self {
        case .malformed(let reason): return "not a valid safetensors file: \(reason)"
        case .unreadable(let path, let reason): return "cannot read \(path): \(reason)"
        case .missingTensor(let name): return "the file has no tensor \(name), which the model needs (is it from another model or config?)"
        case .wrongShape(let name, let file, let expected):
            return "tensor \(name) has shape \(file) in the file, the model needs \(expected)"
        case .wrongDtype(let name, let dtype):
            return "tensor \(name) is stored as \(dtype); ssgd reads float32 (F32) only, convert it with tensor.float()"
        case .unexpectedTensor(let name):
            return "the file has a tensor \(name) that the model does not have (is it from another model or config?)"
        }
    }
}

public enum Safetensors {
    /// The reference implementation refuses headers above 100 MB; so do we.
    public static let maximumHeaderBytes = 100_000_000
    /// Bytes per element of every dtype the format defines (to check the sizes of tensors we skip).
    static let elementSizes: [String: Int] = [
        "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
        "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
    ]

    // MARK: - Encoding

    /// The file's bytes: tensors in the given order, header padded with spaces to 8 bytes.
    public static func encode(_ file: SafetensorsFile) -> [UInt8] {
        var entries = [String]()
        var offset = 0
        for tensor in file.tensors {
            let end = offset + 4 * tensor.values.count
            let shape = tensor.shape.map(String.init).joined(separator: ",")
            entries.append("\(jsonString(tensor.name)):{\"dtype\":\"F32\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        if !file.metadata.isEmpty {
            let pairs = file.metadata.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\(jsonString($0.value))" }
            entries.insert("\"__metadata__\":{\(pairs.joined(separator: ","))}", at: 0)
        }
        var header = Array(("{" + entries.joined(separator: ",") + "}").utf8)
        header += [UInt8](repeating: 0x20, count: (8 - header.count % 8) % 8)
        var bytes = [UInt8]()
        bytes.reserveCapacity(8 + header.count + offset)
        var length = UInt64(header.count).littleEndian
        withUnsafeBytes(of: &length) { bytes += $0 }
        bytes += header
        for tensor in file.tensors {
            for value in tensor.values {
                var bits = value.bitPattern.littleEndian
                withUnsafeBytes(of: &bits) { bytes += $0 }
            }
        }
        return bytes
    }

    public static func write(_ file: SafetensorsFile, to path: String) throws {
        let writer = try AtomicFileWriter(path: path)
        try writer.write(encode(file))
        try writer.commit()
    }

    /// A JSON string literal: quotes, backslashes and control characters escaped.
    static func jsonString(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case "\r": result += "\\r"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }

    // MARK: - Decoding

    public static func read(path: String) throws -> SafetensorsFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SafetensorsError.unreadable(path: path, reason: "no such file, or not readable")
        }
        return try decode([UInt8](data))
    }

    private struct Entry: Decodable {
        var dtype: String
        var shape: [Int]
        var dataOffsets: [Int]
        enum CodingKeys: String, CodingKey {
            case dtype, shape
            case dataOffsets = "data_offsets"
        }
    }

    private struct Header: Decodable {
        var entries: [(name: String, entry: Entry)] = []
        var metadata: [String: String] = [:]

        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: Key.self)
            for key in container.allKeys {
                if key.stringValue == "__metadata__" {
                    metadata = try container.decode([String: String].self, forKey: key)
                } else {
                    entries.append((key.stringValue, try container.decode(Entry.self, forKey: key)))
                }
            }
        }
    }

    /// Parse and check a whole file held in memory.
    public static func decode(_ bytes: [UInt8]) throws -> SafetensorsFile {
        func malformed(_ reason: String) -> SafetensorsError { .malformed(reason: reason) }
        guard bytes.count >= 8 else { throw malformed("\(bytes.count) bytes, shorter than the 8-byte header length") }
        var length: UInt64 = 0
        for i in 0..<8 { length |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard length <= UInt64(maximumHeaderBytes) else {
            throw malformed("header length \(length) exceeds the \(maximumHeaderBytes)-byte limit (truncated or not safetensors?)")
        }
        let headerEnd = 8 + Int(length)
        guard headerEnd <= bytes.count else {
            throw malformed("header length \(length) runs past the end of the \(bytes.count)-byte file (truncated?)")
        }
        let headerBytes = bytes[8..<headerEnd]
        guard headerBytes.first == UInt8(ascii: "{") else { throw malformed("the header does not start with '{'") }
        let header: Header
        do {
            header = try JSONDecoder().decode(Header.self, from: Data(headerBytes))
        } catch let error as DecodingError {
            throw malformed("header is not the expected JSON: \(describe(error))")
        } catch {
            throw malformed("header is not valid JSON: \(error)")
        }

        let dataCount = bytes.count - headerEnd
        var placed = [(name: String, dtype: String, shape: [Int], begin: Int, end: Int)]()
        for (name, entry) in header.entries {
            guard let size = elementSizes[entry.dtype] else {
                throw malformed("tensor \(name) has unknown dtype \"\(entry.dtype)\"")
            }
            guard entry.shape.allSatisfy({ $0 >= 0 }) else { throw malformed("tensor \(name) has a negative size in shape \(entry.shape)") }
            guard entry.dataOffsets.count == 2 else {
                throw malformed("tensor \(name): data_offsets must be [begin, end], got \(entry.dataOffsets)")
            }
            let (begin, end) = (entry.dataOffsets[0], entry.dataOffsets[1])
            guard begin >= 0, begin <= end, end <= dataCount else {
                throw malformed("tensor \(name): data_offsets [\(begin), \(end)] lie outside the \(dataCount)-byte data")
            }
            var byteCount = size
            for dimension in entry.shape {
                let (product, overflow) = byteCount.multipliedReportingOverflow(by: dimension)
                guard !overflow else { throw malformed("tensor \(name): shape \(entry.shape) is too large") }
                byteCount = product
            }
            guard end - begin == byteCount else {
                throw malformed("tensor \(name): shape \(entry.shape) of \(entry.dtype) needs \(byteCount) bytes, data_offsets give \(end - begin)")
            }
            placed.append((name, entry.dtype, entry.shape, begin, end))
        }
        placed.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var cursor = 0
        for (index, tensor) in placed.enumerated() {
            if tensor.begin < cursor {
                throw malformed("tensor \(tensor.name) overlaps tensor \(placed[index - 1].name)")
            }
            if tensor.begin > cursor {
                throw malformed("\(tensor.begin - cursor) unused bytes before tensor \(tensor.name)")
            }
            cursor = tensor.end
        }
        guard cursor == dataCount else { throw malformed("\(dataCount - cursor) bytes after the last tensor") }

        var file = SafetensorsFile(tensors: [], metadata: header.metadata)
        bytes.withUnsafeBytes { raw in
            for tensor in placed {
                guard tensor.dtype == "F32" else {
                    file.otherTensors[tensor.name] = tensor.dtype
                    continue
                }
                let count = (tensor.end - tensor.begin) / 4
                let base = headerEnd + tensor.begin
                let values = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                    for i in 0..<count {
                        let bits = raw.loadUnaligned(fromByteOffset: base + 4 * i, as: UInt32.self)
                        buffer[i] = Float(bitPattern: UInt32(littleEndian: bits))
                    }
                    initialized = count
                }
                file.tensors.append(SafetensorsTensor(name: tensor.name, shape: tensor.shape, values: values))
            }
        }
        return file
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            return keys.isEmpty ? "" : " at \(keys.joined(separator: "."))"
        }
        switch error {
        case .dataCorrupted(let context):
            return "\(context.debugDescription)\(path(context))"
        case .keyNotFound(let key, let context):
            return "missing \"\(key.stringValue)\"\(path(context))"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "\(context.debugDescription)\(path(context))"
        @unknown default:
            return "\(error)"
        }
    }

    // MARK: - Networks

    /// Every parameter and BN running statistic of `network` under its PyTorch name and shape,
    /// in arena order (parameters, then state).
    public static func tensors(of network: Network) -> [SafetensorsTensor] {
        let parameters = network.parameterTable.map { entry in
            SafetensorsTensor(
                name: entry.name, shape: entry.shape,
                values: Array(UnsafeBufferPointer(start: network.parameters.pointer + entry.offset, count: entry.count)))
        }
        let state = network.stateTable.map { entry in
            SafetensorsTensor(
                name: entry.name, shape: entry.shape,
                values: Array(UnsafeBufferPointer(start: network.state.pointer + entry.offset, count: entry.count)))
        }
        return parameters + state
    }

    /// Copy every parameter and running statistic of `network` from `file`. Each must be present
    /// by name, as F32, with the network's shape; a tensor the network lacks is refused, except
    /// PyTorch's `num_batches_tracked` counters. Nothing is copied unless everything fits.
    public static func load(_ file: SafetensorsFile, into network: Network) throws {
        var byName = [String: SafetensorsTensor]()
        for tensor in file.tensors { byName[tensor.name] = tensor }
        let targets: [(name: String, shape: [Int], destination: UnsafeMutablePointer<Float>)] =
            network.parameterTable.map { ($0.name, $0.shape, network.parameters.pointer + $0.offset) }
            + network.stateTable.map { ($0.name, $0.shape, network.state.pointer + $0.offset) }
        for target in targets {
            guard let tensor = byName[target.name] else {
                if let dtype = file.otherTensors[target.name] { throw SafetensorsError.wrongDtype(name: target.name, dtype: dtype) }
                throw SafetensorsError.missingTensor(name: target.name)
            }
            guard tensor.shape == target.shape else {
                throw SafetensorsError.wrongShape(name: target.name, file: tensor.shape, expected: target.shape)
            }
        }
        let expected = Set(targets.map(\.name))
        let extra = file.tensors.map(\.name) + file.otherTensors.keys.sorted()
        if let name = extra.first(where: { !expected.contains($0) && !$0.hasSuffix("num_batches_tracked") }) {
            throw SafetensorsError.unexpectedTensor(name: name)
        }
        for target in targets {
            byName[target.name]?.values.withUnsafeBufferPointer { source in
                if let base = source.baseAddress { target.destination.update(from: base, count: source.count) }
            }
        }
    }

    public static func load(path: String, into network: Network) throws {
        try load(read(path: path), into: network)
    }
}
