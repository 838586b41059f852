// A Hugging Face checkpoint folder, as `from_pretrained` reads it and `save_pretrained`
// writes it: config.json, the weights as model.safetensors or as shards listed in
// model.safetensors.index.json, and optionally tokenizer.json. Pickled PyTorch weights
// (pytorch_model.bin) are refused: unpickling runs arbitrary code, and safetensors is what
// transformers itself writes by default.

import Foundation

public struct CheckpointFolder: Sendable {
    public static let configName = "config.json"
    public static let weightsName = "model.safetensors"
    public static let indexName = "model.safetensors.index.json"
    public static let tokenizerName = "tokenizer.json"
    static let pickleExtensions: Set<String> = ["bin", "pt", "pth"]

    public let directory: URL
    public let configURL: URL
    public let tokenizerURL: URL?
    /// model.safetensors, or the index of the shards; named by errors about missing tensors.
    public let weightsURL: URL
    private let files: [SafeTensorsFile]
    private let fileForTensor: [String: Int]

    public init(directory: URL) throws {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isFolder), isFolder.boolValue else {
            throw CheckpointError.missingFile(file: directory.path, what: "checkpoint folder")
        }
        let configURL = directory.appendingPathComponent(Self.configName)
        guard FileManager.default.fileExists(atPath: configURL.path) else {
            throw CheckpointError.missingFile(file: directory.path, what: Self.configName)
        }
        let tokenizerURL = directory.appendingPathComponent(Self.tokenizerName)
        self.directory = directory
        self.configURL = configURL
        self.tokenizerURL = FileManager.default.fileExists(atPath: tokenizerURL.path) ? tokenizerURL : nil
        (weightsURL, files, fileForTensor) = try Self.openWeights(in: directory)
    }

    public func config() throws -> ModelConfig {
        try ModelConfig(contentsOf: configURL)
    }

    /// Every tensor across all shards, sorted.
    public func loadTensorNames() throws -> [String] {
        fileForTensor.keys.sorted()
    }

    public func info(_ name: String) -> TensorInfo? {
        fileForTensor[name].flatMap { files[$0].info(name) }
    }

    public func floats(_ name: String) throws -> [Float] {
        guard let index = fileForTensor[name] else {
            throw CheckpointError.missingTensor(file: weightsURL.path, tensor: name)
        }
        return try files[index].floats(name)
    }

    /// The tensor, checked against the shape the model declares for it.
    public func floats(_ name: String, shape: [Int]) throws -> [Float] {
        guard let index = fileForTensor[name], let info = files[index].info(name) else {
            throw CheckpointError.missingTensor(file: weightsURL.path, tensor: name)
        }
        guard info.shape == shape else {
            throw CheckpointError.shapeMismatch(file: files[index].url.path, tensor: name,
                                                expected: shape, found: info.shape)
        }
        return try files[index].floats(name)
    }
}

// MARK: - Locating the weights

extension CheckpointFolder {
    private typealias Weights = (url: URL, files: [SafeTensorsFile], fileForTensor: [String: Int])

    private static func openWeights(in directory: URL) throws -> Weights {
        let single = directory.appendingPathComponent(weightsName)
        if FileManager.default.fileExists(atPath: single.path) {
            let file = try SafeTensorsFile(contentsOf: single)
            return (single, [file], Dictionary(uniqueKeysWithValues: file.names.map { ($0, 0) }))
        }
        let index = directory.appendingPathComponent(indexName)
        if FileManager.default.fileExists(atPath: index.path) {
            return try openShards(index: index, in: directory)
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        let pickles = names.filter { pickleExtensions.contains(($0 as NSString).pathExtension) }.sorted()
        if !pickles.isEmpty {
            throw CheckpointError.pickleOnly(directory: directory.path, files: pickles)
        }
        throw CheckpointError.missingFile(file: directory.path, what: "\(weightsName) or \(indexName)")
    }

    /// The index's weight_map is the authority on which shard holds which tensor, as in
    /// transformers; every tensor it lists must be in the shard it names.
    private static func openShards(index: URL, in directory: URL) throws -> Weights {
        let weightMap = try readWeightMap(index)
        let shardNames = Set(weightMap.values).sorted()
        let files = try shardNames.map { name in
            let url = directory.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw CheckpointError.missingFile(file: url.path, what: "shard listed in \(indexName)")
            }
            return try SafeTensorsFile(contentsOf: url)
        }
        let fileForShard = Dictionary(uniqueKeysWithValues: shardNames.enumerated().map { ($1, $0) })
        var fileForTensor: [String: Int] = [:]
        for (tensor, shard) in weightMap {
            let file = fileForShard[shard]!  // every shard in the map was opened above
            guard files[file].info(tensor) != nil else {
                throw CheckpointError.missingTensor(file: files[file].url.path, tensor: tensor)
            }
            fileForTensor[tensor] = file
        }
        return (index, files, fileForTensor)
    }

    private static func readWeightMap(_ index: URL) throws -> [String: String] {
        let data: Data
        do {
            data = try Data(contentsOf: index)
        } catch {
            throw CheckpointError.unreadable(file: index.path, reason: error.localizedDescription)
        }
        guard case .object(let root)? = try? JSONDecoder().decode(JSONValue.self, from: data),
              case .object(let map)? = root["weight_map"] else {
            throw CheckpointError.malformedHeader(file: index.path, field: "weight_map", reason: "is missing or not an object")
        }
        return try map.mapValues { value in
            // A shard name with a path in it could make us read outside the checkpoint.
            guard case .string(let shard) = value, !shard.contains("/"), shard != "..", shard != "." else {
                throw CheckpointError.malformedHeader(file: index.path, field: "weight_map",
                                                      reason: "names \(value), which is not a file in this folder")
            }
            return shard
        }
    }
}

// MARK: - Writing

public enum CheckpointWriter {
    /// Writes a folder that `from_pretrained` and `CheckpointFolder` both read. Every file is
    /// written atomically, and config.json goes last: until it is in place the folder is not a
    /// checkpoint, so a crash mid-write never leaves one that looks complete.
    public static func write(config: Data, tensors: [(name: String, shape: [Int], values: UnsafeBufferPointer<Float>)],
                             to directory: URL, extraFiles: [URL]) throws {
        let configURL = directory.appendingPathComponent(CheckpointFolder.configName)
        _ = try ModelConfig(jsonData: config, source: configURL.path)
        let reserved = [CheckpointFolder.configName, CheckpointFolder.weightsName]
        if let clash = extraFiles.first(where: { reserved.contains($0.lastPathComponent) }) {
            throw CheckpointError.writeFailed(file: directory.appendingPathComponent(clash.lastPathComponent).path,
                                              reason: "extra file \(clash.path) would replace the checkpoint's own")
        }
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw CheckpointError.writeFailed(file: directory.path, reason: error.localizedDescription)
        }
        try SafeTensorsWriter.write(tensors, metadata: ["format": "pt"],
                                    to: directory.appendingPathComponent(CheckpointFolder.weightsName))
        for extra in extraFiles {
            try AtomicFile.save(try contents(of: extra), to: directory.appendingPathComponent(extra.lastPathComponent))
        }
        try AtomicFile.save(config, to: configURL)
    }

    private static func contents(of url: URL) throws -> Data {
        do {
            return try Data(contentsOf: url)
        } catch {
            throw CheckpointError.unreadable(file: url.path, reason: error.localizedDescription)
        }
    }
}
