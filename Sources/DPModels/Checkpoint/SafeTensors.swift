// Our own reader and writer of the safetensors format (huggingface/safetensors, `safe_open` and
// `save_file`): an 8-byte little-endian header length N, N bytes of JSON header mapping each
// tensor name to {dtype, shape, data_offsets} (offsets relative to the data section), plus an
// optional "__metadata__" map of strings, then the data. The reader validates everything the
// Rust library validates, so a bad file fails at open with the tensor named, not mid-training.
// Reading converts to Float on demand because we compute in fp32; writing emits F32 only.

import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The element types of the safetensors specification. Every one is accepted in a header so
/// that a file validates; only some convert to Float or Int32.
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    case bool = "BOOL", u8 = "U8", i8 = "I8", f8e5m2 = "F8_E5M2", f8e4m3 = "F8_E4M3"
    case i16 = "I16", u16 = "U16", f16 = "F16", bf16 = "BF16"
    case i32 = "I32", u32 = "U32", f32 = "F32"
    case i64 = "I64", u64 = "U64", f64 = "F64"

    public var byteSize: Int {
        switch self {
        case .bool, .u8, .i8, .f8e5m2, .f8e4m3: return 1
        case .i16, .u16, .f16, .bf16: return 2
        case .i32, .u32, .f32: return 4
        case .i64, .u64, .f64: return 8
        }
    }
}

public struct TensorInfo: Sendable, Equatable {
    public let dtype: SafeTensorsDType
    public let shape: [Int]
    public var count: Int { shape.reduce(1, *) }

    public init(dtype: SafeTensorsDType, shape: [Int]) {
        self.dtype = dtype
        self.shape = shape
    }
}

// MARK: - Reader

public struct SafeTensorsFile: Sendable {
    /// The Python library's limit; a larger header means a corrupt length, not a real file.
    public static let maxHeaderLength = 100_000_000

    private struct Entry: Sendable {
        let info: TensorInfo
        /// Byte range inside the data section.
        let range: Range<Int>
    }

    public let url: URL
    public let metadata: [String: String]
    /// Tensor names, sorted.
    public let names: [String]
    /// The whole file, memory-mapped so that opening a large checkpoint costs no copy.
    private let bytes: Data
    private let dataStart: Int
    private let entries: [String: Entry]

    public init(contentsOf url: URL) throws {
        let file = url.path
        do {
            bytes = try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw CheckpointError.unreadable(file: file, reason: error.localizedDescription)
        }
        let headerLength = try Self.headerLength(of: bytes, file: file)
        let header = try Self.parseHeader(bytes.subdata(in: 8..<(8 + headerLength)), file: file)
        dataStart = 8 + headerLength
        let dataSize = bytes.count - dataStart
        var entries: [String: Entry] = [:]
        // In name order, so that a file with several faults always reports the same one.
        for (name, value) in header.sorted(by: { $0.key < $1.key }) where name != "__metadata__" {
            entries[name] = try Self.parseEntry(name, value, dataSize: dataSize, file: file)
        }
        try Self.checkCoverage(entries, dataSize: dataSize, file: file)
        self.url = url
        self.entries = entries
        self.names = entries.keys.sorted()
        self.metadata = try Self.parseMetadata(header["__metadata__"], file: file)
    }

    public func info(_ name: String) -> TensorInfo? { entries[name]?.info }

    /// The tensor as fp32; F16, BF16 and F64 are converted (F64 rounds to nearest).
    public func floats(_ name: String) throws -> [Float] {
        let entry = try self.entry(name)
        switch entry.info.dtype {
        case .f32: return elements(of: entry, as: UInt32.self) { Float(bitPattern: $0) }
        case .f16: return elements(of: entry, as: UInt16.self, Self.floatFromHalf)
        case .bf16: return elements(of: entry, as: UInt16.self) { Float(bitPattern: UInt32($0) << 16) }
        case .f64: return elements(of: entry, as: UInt64.self) { Float(Double(bitPattern: $0)) }
        default:
            throw CheckpointError.unconvertibleDType(file: url.path, tensor: name,
                                                     dtype: entry.info.dtype.rawValue, wanted: "Float")
        }
    }

    /// Integer buffers such as `embeddings.position_ids`; I64 values must fit in Int32.
    public func int32s(_ name: String) throws -> [Int32] {
        let entry = try self.entry(name)
        switch entry.info.dtype {
        case .i32: return elements(of: entry, as: UInt32.self) { Int32(bitPattern: $0) }
        case .i64:
            let wide = elements(of: entry, as: UInt64.self) { Int64(bitPattern: $0) }
            return try wide.enumerated().map { index, value in
                guard let narrow = Int32(exactly: value) else {
                    throw CheckpointError.valueOutOfRange(file: url.path, tensor: name, index: index, value: value)
                }
                return narrow
            }
        default:
            throw CheckpointError.unconvertibleDType(file: url.path, tensor: name,
                                                     dtype: entry.info.dtype.rawValue, wanted: "Int32")
        }
    }

    private func entry(_ name: String) throws -> Entry {
        guard let entry = entries[name] else {
            throw CheckpointError.missingTensor(file: url.path, tensor: name)
        }
        return entry
    }

    /// Decodes little-endian elements; loads are unaligned because the header length, and so
    /// the start of the data, need not be a multiple of the element size.
    private func elements<Raw: FixedWidthInteger, T>(of entry: Entry, as raw: Raw.Type,
                                                     _ convert: (Raw) -> T) -> [T] {
        let size = MemoryLayout<Raw>.size
        return bytes.withUnsafeBytes { file in
            let base = dataStart + entry.range.lowerBound
            return (0..<(entry.range.count / size)).map { index in
                convert(Raw(littleEndian: file.loadUnaligned(fromByteOffset: base + index * size, as: Raw.self)))
            }
        }
    }

    /// IEEE binary16 to binary32; exact for every input, NaN payloads included.
    public static func floatFromHalf(_ half: UInt16) -> Float {
        let sign = UInt32(half & 0x8000) << 16
        let exponent = UInt32(half >> 10) & 0x1F
        let mantissa = UInt32(half & 0x3FF)
        switch exponent {
        case 0:
            // Zero and subnormals are mantissa * 2^-24, exact in fp32.
            let magnitude = Float(mantissa) * 0x1p-24
            return sign == 0 ? magnitude : -magnitude
        case 0x1F:
            return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13)
        default:
            return Float(bitPattern: sign | (exponent + 112) << 23 | mantissa << 13)
        }
    }
}

// MARK: - Header validation

extension SafeTensorsFile {
    private static func headerLength(of bytes: Data, file: String) throws -> Int {
        guard bytes.count >= 8 else { throw CheckpointError.fileTooShort(file: file, size: bytes.count) }
        let length = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard length <= UInt64(maxHeaderLength), Int(length) <= bytes.count - 8 else {
            throw CheckpointError.badHeaderLength(file: file, headerLength: length, fileSize: bytes.count)
        }
        return Int(length)
    }

    private static func parseHeader(_ json: Data, file: String) throws -> [String: JSONValue] {
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: json)
        } catch {
            throw CheckpointError.malformedHeader(file: file, field: "", reason: "is not valid JSON")
        }
        guard case .object(let header) = value else {
            throw CheckpointError.malformedHeader(file: file, field: "", reason: "is not a JSON object")
        }
        return header
    }

    private static func parseEntry(_ name: String, _ value: JSONValue, dataSize: Int, file: String) throws -> Entry {
        guard case .object(let fields) = value else {
            throw CheckpointError.malformedHeader(file: file, field: name,
                                                  reason: "is not an object with dtype, shape and data_offsets")
        }
        func fault(_ field: String, _ reason: String) -> CheckpointError {
            .malformedEntry(file: file, tensor: name, field: field, reason: reason)
        }
        guard let dtypeValue = fields["dtype"] else { throw fault("dtype", "is missing") }
        guard case .string(let dtypeName) = dtypeValue else { throw fault("dtype", "is not a string") }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            throw CheckpointError.unknownDType(file: file, tensor: name, dtype: dtypeName)
        }
        guard let shapeValue = fields["shape"] else { throw fault("shape", "is missing") }
        guard let shape = shapeValue.nonNegativeInts else {
            throw fault("shape", "must be a list of non-negative integers, found \(shapeValue)")
        }
        guard let offsetsValue = fields["data_offsets"] else { throw fault("data_offsets", "is missing") }
        guard let offsets = offsetsValue.nonNegativeInts, offsets.count == 2, offsets[0] <= offsets[1] else {
            throw fault("data_offsets", "must be two increasing non-negative integers, found \(offsetsValue)")
        }
        let expected = shape.reduce((dtype.byteSize, false)) { product, dimension in
            let next = product.0.multipliedReportingOverflow(by: dimension)
            return (next.partialValue, product.1 || next.overflow)
        }
        guard !expected.1 else { throw fault("shape", "\(shape) has more elements than can be addressed") }
        guard expected.0 == offsets[1] - offsets[0] else {
            throw CheckpointError.byteLengthMismatch(file: file, tensor: name, dtype: dtypeName, shape: shape,
                                                     expected: expected.0, found: offsets[1] - offsets[0])
        }
        guard offsets[1] <= dataSize else {
            throw CheckpointError.dataPastEnd(file: file, tensor: name, offsets: offsets, dataSize: dataSize)
        }
        return Entry(info: TensorInfo(dtype: dtype, shape: shape), range: offsets[0]..<offsets[1])
    }

    /// The specification requires the tensors to tile the data section exactly: an overlap
    /// means two tensors alias, and a hole or trailing bytes mean a truncated or spliced file.
    private static func checkCoverage(_ entries: [String: Entry], dataSize: Int, file: String) throws {
        let ordered = entries.sorted {
            ($0.value.range.lowerBound, $0.value.range.upperBound, $0.key)
                < ($1.value.range.lowerBound, $1.value.range.upperBound, $1.key)
        }
        var covered = 0
        var previous: String?
        for (name, entry) in ordered {
            if entry.range.lowerBound < covered, let previous {
                throw CheckpointError.overlappingTensors(file: file, tensor: name, previous: previous)
            }
            if entry.range.lowerBound > covered {
                throw CheckpointError.uncoveredBytes(file: file, range: covered..<entry.range.lowerBound, after: previous)
            }
            covered = entry.range.upperBound
            previous = name
        }
        if covered != dataSize {
            throw CheckpointError.uncoveredBytes(file: file, range: covered..<dataSize, after: previous)
        }
    }

    private static func parseMetadata(_ value: JSONValue?, file: String) throws -> [String: String] {
        guard let value else { return [:] }
        guard case .object(let fields) = value else {
            throw CheckpointError.malformedHeader(file: file, field: "__metadata__", reason: "is not an object")
        }
        return try fields.mapValues { field in
            guard case .string(let text) = field else {
                throw CheckpointError.malformedHeader(file: file, field: "__metadata__",
                                                      reason: "must map strings to strings, found \(field)")
            }
            return text
        }
    }
}

private extension JSONValue {
    var nonNegativeInts: [Int]? {
        guard case .array(let items) = self else { return nil }
        let ints = items.compactMap { item -> Int? in
            guard case .int(let value) = item, value >= 0 else { return nil }
            return Int(exactly: value)
        }
        return ints.count == items.count ? ints : nil
    }
}

// MARK: - Writer

public enum SafeTensorsWriter {
    /// Writes F32 tensors in the given order. transformers refuses a file whose metadata lacks
    /// "format", so "pt" is added unless the caller sets it.
    public static func write(_ tensors: [(name: String, shape: [Int], values: UnsafeBufferPointer<Float>)],
                             metadata: [String: String], to url: URL) throws {
        let header = try headerBytes(tensors.map { ($0.name, $0.shape, $0.values.count) },
                                     metadata: metadata, file: url.path)
        try AtomicFile.save(to: url) { file in
            try header.withUnsafeBytes { try file.append($0) }
            // safetensors is little-endian, as is every host we build for, so the floats go
            // out as they lie in memory.
            for tensor in tensors { try file.append(UnsafeRawBufferPointer(tensor.values)) }
        }
    }

    /// The length prefix and the JSON header, padded with spaces so that the data starts on
    /// an 8-byte boundary, as the Python library does.
    private static func headerBytes(_ tensors: [(name: String, shape: [Int], count: Int)],
                                    metadata: [String: String], file: String) throws -> Data {
        var header: [String: JSONValue] = [:]
        var offset = 0
        for tensor in tensors {
            guard tensor.shape.allSatisfy({ $0 >= 0 }), tensor.shape.reduce(1, *) == tensor.count else {
                throw CheckpointError.valueCountMismatch(file: file, tensor: tensor.name,
                                                         shape: tensor.shape, count: tensor.count)
            }
            guard header[tensor.name] == nil, tensor.name != "__metadata__" else {
                throw CheckpointError.duplicateTensor(file: file, tensor: tensor.name)
            }
            let end = offset + tensor.count * SafeTensorsDType.f32.byteSize
            header[tensor.name] = .object([
                "dtype": .string(SafeTensorsDType.f32.rawValue),
                "shape": .array(tensor.shape.map { .int(Int64($0)) }),
                "data_offsets": .array([.int(Int64(offset)), .int(Int64(end))]),
            ])
            offset = end
        }
        header["__metadata__"] = .object(metadata.merging(["format": "pt"]) { given, _ in given }.mapValues { .string($0) })
        var json = try JSONValue.object(header).encoded()
        json.append(contentsOf: [UInt8](repeating: UInt8(ascii: " "), count: (8 - json.count % 8) % 8))
        var prefix = Data(count: 8)
        prefix.withUnsafeMutableBytes { $0.storeBytes(of: UInt64(json.count).littleEndian, as: UInt64.self) }
        return prefix + json
    }
}

// MARK: - Atomic files

/// Writes a file so that readers see either the old contents or the complete new ones: the
/// bytes go to a temporary in the same folder (so the rename stays on one file system), are
/// fsynced, and the temporary is renamed over the destination. On any failure the temporary
/// is removed and the destination is untouched.
public struct AtomicFile {
    private let descriptor: Int32
    private let destination: String

    static func save(to url: URL, _ fill: (AtomicFile) throws -> Void) throws {
        let destination = url.path
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).tmp-\(UUID().uuidString)").path
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw failure(destination, "create temporary file") }
        do {
            try fill(AtomicFile(descriptor: descriptor, destination: destination))
            guard fsync(descriptor) == 0 else { throw failure(destination, "fsync") }
        } catch {
            close(descriptor)
            unlink(temporary)
            throw error
        }
        // close can report a deferred write error on network file systems.
        guard close(descriptor) == 0 else {
            let error = failure(destination, "close")
            unlink(temporary)
            throw error
        }
        guard rename(temporary, destination) == 0 else {
            let error = failure(destination, "rename")
            unlink(temporary)
            throw error
        }
        syncFolder(of: url)
    }

    public static func save(_ data: Data, to url: URL) throws {
        try save(to: url) { file in try data.withUnsafeBytes { try file.append($0) } }
    }

    func append(_ bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress else { return }
        var written = 0
        while written < bytes.count {
            let result = write(descriptor, base + written, bytes.count - written)
            if result < 0 {
                if errno == EINTR { continue }
                throw Self.failure(destination, "write")
            }
            written += result
        }
    }

    /// Makes the rename itself durable. Best effort: the file is already complete and in
    /// place, and some file systems refuse fsync on a folder.
    public static func syncFolder(of url: URL) {
        let folder = open(url.deletingLastPathComponent().path, O_RDONLY | O_CLOEXEC)
        guard folder >= 0 else { return }
        fsync(folder)
        close(folder)
    }

    private static func failure(_ destination: String, _ step: String) -> CheckpointError {
        .writeFailed(file: destination, reason: "\(step): \(String(cString: strerror(errno)))")
    }
}
