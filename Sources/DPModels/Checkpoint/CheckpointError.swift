// Every way reading or writing a Hugging Face checkpoint can fail. Each case carries the file at
// fault and the tensor, header field or config key inside it, so that one line tells the user
// what to fix without a debugger.

public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    // MARK: Files and folders
    case missingFile(file: String, what: String)
    case unreadable(file: String, reason: String)
    case pickleOnly(directory: String, files: [String])
    case writeFailed(file: String, reason: String)

    // MARK: The safetensors container
    case fileTooShort(file: String, size: Int)
    case badHeaderLength(file: String, headerLength: UInt64, fileSize: Int)
    /// `field` is empty when the header as a whole is at fault.
    case malformedHeader(file: String, field: String, reason: String)
    case malformedEntry(file: String, tensor: String, field: String, reason: String)
    case unknownDType(file: String, tensor: String, dtype: String)
    case byteLengthMismatch(file: String, tensor: String, dtype: String, shape: [Int],
                            expected: Int, found: Int)
    case dataPastEnd(file: String, tensor: String, offsets: [Int], dataSize: Int)
    case overlappingTensors(file: String, tensor: String, previous: String)
    case uncoveredBytes(file: String, range: Range<Int>, after: String?)
    case unconvertibleDType(file: String, tensor: String, dtype: String, wanted: String)
    case valueOutOfRange(file: String, tensor: String, index: Int, value: Int64)
    case duplicateTensor(file: String, tensor: String)
    case valueCountMismatch(file: String, tensor: String, shape: [Int], count: Int)

    // MARK: Tensors the model expects
    case missingTensor(file: String, tensor: String)
    case shapeMismatch(file: String, tensor: String, expected: [Int], found: [Int])

    // MARK: config.json
    case missingKey(file: String, key: String)
    case invalidValue(file: String, key: String, value: String, reason: String)
    case unsupportedModelType(file: String, value: String, supported: [String])

    public var description: String {
        switch self {
        case let .missingFile(file, what):
            return "\(file): \(what) not found"
        case let .unreadable(file, reason):
            return "\(file): cannot be read (\(reason))"
        case let .pickleOnly(directory, files):
            return "\(directory): holds only PyTorch pickle weights (\(files.joined(separator: ", "))); "
                + "dp-train refuses to unpickle them because unpickling can run arbitrary code. "
                + "Convert them to safetensors first: python -c \"from transformers import AutoModel; "
                + "AutoModel.from_pretrained('\(directory)').save_pretrained('\(directory)')\" "
                + "(transformers >= 4.35 writes model.safetensors by default; "
                + "use AutoModelForSequenceClassification instead to keep a fine-tuned head)"
        case let .writeFailed(file, reason):
            return "\(file): cannot be written (\(reason)); nothing was left in its place"
        case let .fileTooShort(file, size):
            return "\(file): is \(size) bytes long, shorter than the 8-byte safetensors header length"
        case let .badHeaderLength(file, headerLength, fileSize):
            return "\(file): header length \(headerLength) is impossible for a file of \(fileSize) bytes "
                + "(limit \(SafeTensorsFile.maxHeaderLength) bytes); the file is truncated or not safetensors"
        case let .malformedHeader(file, field, reason):
            return "\(file): " + (field.isEmpty ? "header" : "field '\(field)'") + " \(reason)"
        case let .malformedEntry(file, tensor, field, reason):
            return "\(file): tensor '\(tensor)' field '\(field)' \(reason)"
        case let .unknownDType(file, tensor, dtype):
            return "\(file): tensor '\(tensor)' has unknown dtype '\(dtype)' (known: "
                + SafeTensorsDType.allCases.map(\.rawValue).joined(separator: ", ") + ")"
        case let .byteLengthMismatch(file, tensor, dtype, shape, expected, found):
            return "\(file): tensor '\(tensor)' of dtype \(dtype) and shape \(shape) needs \(expected) bytes "
                + "but its data_offsets span \(found)"
        case let .dataPastEnd(file, tensor, offsets, dataSize):
            return "\(file): tensor '\(tensor)' has data_offsets \(offsets) past the end of the file "
                + "(\(dataSize) bytes of data)"
        case let .overlappingTensors(file, tensor, previous):
            return "\(file): tensor '\(tensor)' overlaps the data of tensor '\(previous)'"
        case let .uncoveredBytes(file, range, after):
            let place = after.map { "after tensor '\($0)'" } ?? "at the start of the data"
            return "\(file): data bytes \(range.lowerBound)..<\(range.upperBound) \(place) belong to no tensor"
        case let .unconvertibleDType(file, tensor, dtype, wanted):
            return "\(file): tensor '\(tensor)' has dtype \(dtype), which cannot be read as \(wanted)"
        case let .valueOutOfRange(file, tensor, index, value):
            return "\(file): tensor '\(tensor)' element \(index) = \(value) does not fit in Int32"
        case let .duplicateTensor(file, tensor):
            return "\(file): tensor '\(tensor)' appears twice"
        case let .valueCountMismatch(file, tensor, shape, count):
            return "\(file): tensor '\(tensor)' has shape \(shape) but \(count) values were given"
        case let .missingTensor(file, tensor):
            return "\(file): tensor '\(tensor)' is missing"
        case let .shapeMismatch(file, tensor, expected, found):
            return "\(file): tensor '\(tensor)' has shape \(found), expected \(expected)"
        case let .missingKey(file, key):
            return "\(file): required key '\(key)' is missing"
        case let .invalidValue(file, key, value, reason):
            return "\(file): key '\(key)' = \(value) \(reason)"
        case let .unsupportedModelType(file, value, supported):
            return "\(file): key 'model_type' = '\(value)' is not supported (supported: "
                + supported.joined(separator: ", ") + ")"
        }
    }
}
