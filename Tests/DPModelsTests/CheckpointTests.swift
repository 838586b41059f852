// Checkpoint I/O: safetensors round trips and hand-built files with known bit patterns, every
// corruption the reader must reject (with the file and tensor or field named), config.json
// parsing for each model family, checkpoint folders (single, sharded, pickle-only) and atomic
// writes.

import DPBackend
import DPModels
import DPTestSupport
import Foundation
import XCTest

final class CheckpointTests: XCTestCase {
    // MARK: Helpers

    private func makeFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("dp-train-checkpoint-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    /// A safetensors file from its parts, with the header length as given (or the true one).
    private func rawFile(header: String, data: [UInt8], headerLength: UInt64? = nil) -> Data {
        let json = Data(header.utf8)
        var length = (headerLength ?? UInt64(json.count)).littleEndian
        return Data(bytes: &length, count: 8) + json + Data(data)
    }

    private func write(_ contents: Data, _ name: String, in folder: URL) throws -> URL {
        let url = folder.appendingPathComponent(name)
        try contents.write(to: url)
        return url
    }

    private func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
        values.flatMap { value in withUnsafeBytes(of: value.littleEndian) { Array($0) } }
    }

    /// Runs `body`, which must throw a CheckpointError whose description contains every one of
    /// `fragments`.
    private func assertFails(_ fragments: [String], file: StaticString = #filePath, line: UInt = #line,
                             _ body: () throws -> Void) {
        do {
            try body()
            XCTFail("expected an error mentioning \(fragments)", file: file, line: line)
        } catch let error as CheckpointError {
            for fragment in fragments {
                XCTAssertTrue(error.description.contains(fragment),
                              "'\(error.description)' does not mention '\(fragment)'", file: file, line: line)
            }
        } catch {
            XCTFail("expected a CheckpointError, got \(error)", file: file, line: line)
        }
    }

    private func writeTensors(_ tensors: [(String, [Int], [Float])], to url: URL,
                              metadata: [String: String] = [:]) throws {
        try withTensorViews(tensors) { try SafeTensorsWriter.write($0, metadata: metadata, to: url) }
    }

    // MARK: safetensors round trip

    func testF32RoundTripIsBitExact() throws {
        let folder = try makeFolder()
        let url = folder.appendingPathComponent("model.safetensors")
        let special: [Float] = [-0.0, .infinity, -.infinity, .nan, .leastNonzeroMagnitude, .greatestFiniteMagnitude]
        let tensors: [(String, [Int], [Float])] = [
            ("encoder.layer.0.attention.self.query.weight", [2, 3], [1, -2, 3.5, 1e-30, 7, 8]),
            ("special", [6], special),
            ("scalar", [], [42]),
            ("empty", [0, 4], []),
        ]
        try writeTensors(tensors, to: url, metadata: ["step": "12"])

        let file = try SafeTensorsFile(contentsOf: url)
        XCTAssertEqual(file.names, tensors.map(\.0).sorted())
        XCTAssertEqual(file.metadata, ["step": "12", "format": "pt"])
        for (name, shape, values) in tensors {
            XCTAssertEqual(file.info(name), TensorInfo(dtype: .f32, shape: shape))
            XCTAssertEqual(try file.floats(name).map(\.bitPattern), values.map(\.bitPattern), name)
        }
        let headerLength = try Data(contentsOf: url).prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        XCTAssertEqual(headerLength % 8, 0, "the data section must start 8-byte aligned")
    }

    func testWriterRejectsInconsistentTensors() throws {
        let url = try makeFolder().appendingPathComponent("model.safetensors")
        assertFails(["model.safetensors", "'w'", "[2, 2]", "3 values"]) {
            try writeTensors([("w", [2, 2], [1, 2, 3])], to: url)
        }
        assertFails(["model.safetensors", "'w'", "twice"]) {
            try writeTensors([("w", [1], [1]), ("w", [1], [2])], to: url)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: url.path))
    }

    // MARK: Hand-built files

    func testF16DecodesKnownBitPatterns() throws {
        let halves: [UInt16] = [0x3C00, 0xC000, 0x0001, 0x03FF, 0x7C00, 0xFC00, 0x7BFF, 0x8000, 0x3555]
        let expected: [Float] = [1, -2, 0x1p-24, 1023 * 0x1p-24, .infinity, -.infinity, 65504, -0.0, 0.333251953125]
        let header = #"{"h":{"dtype":"F16","shape":[9],"data_offsets":[0,18]}}"#
        let url = try write(rawFile(header: header, data: littleEndianBytes(halves)), "half.safetensors",
                            in: makeFolder())
        XCTAssertEqual(try SafeTensorsFile(contentsOf: url).floats("h").map(\.bitPattern), expected.map(\.bitPattern))
    }

    func testF16NaNStaysNaN() {
        XCTAssertTrue(SafeTensorsFile.floatFromHalf(0x7E00).isNaN)
        XCTAssertTrue(SafeTensorsFile.floatFromHalf(0xFC01).isNaN)
    }

    func testBF16AndF64Decode() throws {
        let brains: [UInt16] = [0x3F80, 0xC040, 0x7F80, 0x0001, 0x4049]
        let doubles: [Double] = [0.1, -1e300]
        let header = #"{"b":{"dtype":"BF16","shape":[5],"data_offsets":[0,10]},"#
            + #""d":{"dtype":"F64","shape":[2],"data_offsets":[10,26]}}"#
        let data = littleEndianBytes(brains) + littleEndianBytes(doubles.map(\.bitPattern))
        let file = try SafeTensorsFile(contentsOf: write(rawFile(header: header, data: data), "b.safetensors",
                                                         in: makeFolder()))
        XCTAssertEqual(try file.floats("b"), [1, -3, .infinity, Float(bitPattern: 0x0001_0000), 3.140625])
        XCTAssertEqual(try file.floats("d"), [0.1, -.infinity])
    }

    func testIntegerTensors() throws {
        let header = #"{"ids":{"dtype":"I64","shape":[3],"data_offsets":[0,24]},"#
            + #""big":{"dtype":"I64","shape":[1],"data_offsets":[24,32]},"#
            + #""small":{"dtype":"I32","shape":[2],"data_offsets":[32,40]}}"#
        let data = littleEndianBytes([Int64(1), -5, Int64(Int32.max), 1 << 40]) + littleEndianBytes([Int32(-7), 9])
        let file = try SafeTensorsFile(contentsOf: write(rawFile(header: header, data: data), "ids.safetensors",
                                                         in: makeFolder()))
        XCTAssertEqual(try file.int32s("ids"), [1, -5, .max])
        XCTAssertEqual(try file.int32s("small"), [-7, 9])
        assertFails(["ids.safetensors", "'big'", "1099511627776", "Int32"]) { _ = try file.int32s("big") }
        assertFails(["ids.safetensors", "'ids'", "I64", "Float"]) { _ = try file.floats("ids") }
        assertFails(["ids.safetensors", "'absent'", "missing"]) { _ = try file.floats("absent") }
    }

    // MARK: Corrupt files

    func testCorruptFilesAreRejectedNamingFileAndTensor() throws {
        let folder = try makeFolder()
        let eight = [UInt8](repeating: 0, count: 8)
        let entry = { (fields: String) in #"{"t.weight":{"# + fields + "}}" }
        let cases: [(String, Data, [String])] = [
            ("short", Data([1, 2, 3]), ["3 bytes", "8-byte"]),
            ("long header", rawFile(header: "{}", data: [], headerLength: 1000), ["header length 1000"]),
            ("absurd header", rawFile(header: "{}", data: [], headerLength: 200_000_000), ["200000000", "100000000"]),
            ("not json", rawFile(header: "{not json", data: []), ["header is not valid JSON"]),
            ("not object", rawFile(header: "[1, 2]", data: []), ["header is not a JSON object"]),
            ("entry not object", rawFile(header: #"{"t.weight": 3}"#, data: []), ["'t.weight'", "not an object"]),
            ("no dtype", rawFile(header: entry(#""shape":[2],"data_offsets":[0,8]"#), data: eight),
             ["'t.weight'", "'dtype'", "missing"]),
            ("no shape", rawFile(header: entry(#""dtype":"F32","data_offsets":[0,8]"#), data: eight),
             ["'t.weight'", "'shape'", "missing"]),
            ("no offsets", rawFile(header: entry(#""dtype":"F32","shape":[2]"#), data: eight),
             ["'t.weight'", "'data_offsets'", "missing"]),
            ("unknown dtype", rawFile(header: entry(#""dtype":"F13","shape":[2],"data_offsets":[0,8]"#), data: eight),
             ["'t.weight'", "'F13'", "BF16"]),
            ("negative shape", rawFile(header: entry(#""dtype":"F32","shape":[-1,2],"data_offsets":[0,8]"#), data: eight),
             ["'t.weight'", "'shape'", "-1"]),
            ("fractional shape", rawFile(header: entry(#""dtype":"F32","shape":[1.5],"data_offsets":[0,8]"#), data: eight),
             ["'t.weight'", "'shape'", "1.5"]),
            ("decreasing offsets", rawFile(header: entry(#""dtype":"F32","shape":[2],"data_offsets":[8,0]"#), data: eight),
             ["'t.weight'", "'data_offsets'", "[8,0]"]),
            ("one offset", rawFile(header: entry(#""dtype":"F32","shape":[2],"data_offsets":[8]"#), data: eight),
             ["'t.weight'", "'data_offsets'"]),
            ("string offset", rawFile(header: entry(#""dtype":"F32","shape":[2],"data_offsets":["0",8]"#), data: eight),
             ["'t.weight'", "'data_offsets'"]),
            ("wrong byte length", rawFile(header: entry(#""dtype":"F32","shape":[2,2],"data_offsets":[0,12]"#),
                                          data: [UInt8](repeating: 0, count: 12)),
             ["'t.weight'", "[2, 2]", "needs 16 bytes", "span 12"]),
            ("shape overflow", rawFile(header: entry(#""dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]"#),
                                       data: eight), ["'t.weight'", "'shape'"]),
            ("truncated data", rawFile(header: entry(#""dtype":"F32","shape":[24],"data_offsets":[0,96]"#),
                                       data: [UInt8](repeating: 0, count: 80)),
             ["tensor 't.weight' has data_offsets [0, 96] past the end of the file (80 bytes of data)"]),
            ("overlap", rawFile(header: #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"#
                                + #""b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}"#,
                                data: [UInt8](repeating: 0, count: 24)),
             ["'b'", "overlaps", "'a'"]),
            ("gap", rawFile(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"#
                            + #""b":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}}"#,
                            data: [UInt8](repeating: 0, count: 24)),
             ["bytes 8..<16", "after tensor 'a'"]),
            ("trailing bytes", rawFile(header: entry(#""dtype":"F32","shape":[2],"data_offsets":[0,8]"#),
                                       data: eight + [1, 2]),
             ["bytes 8..<10", "after tensor 't.weight'"]),
            ("bad metadata", rawFile(header: #"{"__metadata__":{"format":3}}"#, data: []), ["'__metadata__'", "strings"]),
        ]
        for (label, contents, fragments) in cases {
            let name = label.replacingOccurrences(of: " ", with: "-") + ".safetensors"
            let url = try write(contents, name, in: folder)
            assertFails([name] + fragments) { _ = try SafeTensorsFile(contentsOf: url) }
        }
    }

    func testMissingFileIsUnreadable() throws {
        let url = try makeFolder().appendingPathComponent("absent.safetensors")
        assertFails(["absent.safetensors", "cannot be read"]) { _ = try SafeTensorsFile(contentsOf: url) }
    }

    // MARK: Atomic writes

    func testAtomicWriteLeavesOnlyTheDestination() throws {
        let folder = try makeFolder()
        let url = folder.appendingPathComponent("model.safetensors")
        try writeTensors([("w", [2], [1, 2])], to: url)
        try writeTensors([("w", [3], [4, 5, 6])], to: url)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["model.safetensors"])
        XCTAssertEqual(try SafeTensorsFile(contentsOf: url).floats("w"), [4, 5, 6])
    }

    func testWriteUnderARegularFileFailsClearly() throws {
        let folder = try makeFolder()
        let blocker = try write(Data("not a folder".utf8), "blocker", in: folder)
        let url = blocker.appendingPathComponent("model.safetensors")
        assertFails([url.path, "cannot be written", "Not a directory"]) {
            try writeTensors([("w", [1], [1])], to: url)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["blocker"])
    }

    func testFailedRenameRemovesTheTemporary() throws {
        let folder = try makeFolder()
        let url = folder.appendingPathComponent("model.safetensors")
        try FileManager.default.createDirectory(at: url.appendingPathComponent("occupied"),
                                                withIntermediateDirectories: true)
        assertFails(["model.safetensors", "rename"]) { try writeTensors([("w", [1], [1])], to: url) }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["model.safetensors"])
    }

    // MARK: config.json

    static let bertJSON = """
    {"architectures": ["BertForMaskedLM"], "attention_probs_dropout_prob": 0.1, "classifier_dropout": null,
     "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02,
     "intermediate_size": 3072, "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert",
     "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 0, "position_embedding_type": "absolute",
     "transformers_version": "4.41.0", "type_vocab_size": 2, "use_cache": true, "vocab_size": 30522}
    """

    static let robertaJSON = """
    {"architectures": ["RobertaForSequenceClassification"], "attention_probs_dropout_prob": 0.1,
     "bos_token_id": 0, "eos_token_id": 2, "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 768,
     "id2label": {"0": "negative", "1": "neutral", "2": "positive"}, "intermediate_size": 3072,
     "label2id": {"negative": 0, "neutral": 1, "positive": 2}, "layer_norm_eps": 1e-05,
     "max_position_embeddings": 514, "model_type": "roberta", "num_attention_heads": 12, "num_hidden_layers": 12,
     "problem_type": "single_label_classification", "type_vocab_size": 1, "vocab_size": 50265,
     "classifier_dropout": 0.2}
    """

    static let albertJSON = """
    {"architectures": ["AlbertForMaskedLM"], "attention_probs_dropout_prob": 0, "bos_token_id": 2,
     "classifier_dropout_prob": 0.1, "down_scale_factor": 1, "embedding_size": 128, "eos_token_id": 3,
     "gap_size": 0, "hidden_act": "gelu_new", "hidden_dropout_prob": 0, "hidden_size": 768,
     "initializer_range": 0.02, "inner_group_num": 1, "intermediate_size": 3072, "layer_norm_eps": 1e-12,
     "max_position_embeddings": 512, "model_type": "albert", "net_structure_type": 0, "num_attention_heads": 12,
     "num_hidden_groups": 1, "num_hidden_layers": 12, "num_memory_blocks": 0, "pad_token_id": 0,
     "type_vocab_size": 2, "vocab_size": 30000}
    """

    private func config(_ json: String) throws -> ModelConfig {
        try ModelConfig(jsonData: Data(json.utf8), source: "config.json")
    }

    /// The sample with `edit` applied to its parsed object.
    private func edited(_ json: String, _ edit: (inout [String: JSONValue]) -> Void) throws -> String {
        guard case .object(var object) = try JSONDecoder().decode(JSONValue.self, from: Data(json.utf8)) else {
            throw XCTSkip("sample is not an object")
        }
        edit(&object)
        return String(decoding: try JSONValue.object(object).encoded(), as: UTF8.self)
    }

    func testBertConfig() throws {
        let bert = try config(Self.bertJSON)
        XCTAssertEqual(bert.modelType, .bert)
        XCTAssertEqual([bert.vocabSize, bert.hiddenSize, bert.numHiddenLayers, bert.numAttentionHeads,
                        bert.intermediateSize, bert.maxPositionEmbeddings, bert.typeVocabSize, bert.padTokenId],
                       [30522, 768, 12, 12, 3072, 512, 2, 0])
        XCTAssertEqual(bert.hiddenAct, .erf)
        XCTAssertEqual(bert.hiddenDropoutProb, 0.1)
        XCTAssertEqual(bert.layerNormEps, 1e-12)
        XCTAssertEqual(bert.embeddingSize, 768)
        XCTAssertEqual([bert.numHiddenGroups, bert.innerGroupNum, bert.numLabels], [1, 1, 2])
        XCTAssertNil(bert.classifierDropoutProb)
        XCTAssertNil(bert.problemType)
        XCTAssertNil(bert.id2label)
        XCTAssertEqual(bert.raw["use_cache"], .bool(true))
    }

    func testRobertaConfig() throws {
        let roberta = try config(Self.robertaJSON)
        XCTAssertEqual(roberta.modelType, .roberta)
        XCTAssertEqual(roberta.padTokenId, 1, "RoBERTa's default pad token")
        XCTAssertEqual(roberta.layerNormEps, 1e-5)
        XCTAssertEqual(roberta.typeVocabSize, 1)
        XCTAssertEqual(roberta.numLabels, 3)
        XCTAssertEqual(roberta.id2label, [0: "negative", 1: "neutral", 2: "positive"])
        XCTAssertEqual(roberta.problemType, "single_label_classification")
        XCTAssertEqual(roberta.classifierDropoutProb, 0.2)
    }

    func testAlbertConfig() throws {
        let albert = try config(Self.albertJSON)
        XCTAssertEqual(albert.modelType, .albert)
        XCTAssertEqual(albert.embeddingSize, 128)
        XCTAssertEqual(albert.hiddenAct, .tanh)
        XCTAssertEqual(albert.hiddenDropoutProb, 0)
        XCTAssertEqual(albert.classifierDropoutProb, 0.1)
        let grouped = try edited(Self.albertJSON) { $0["num_hidden_groups"] = .int(5) }
        assertFails(["config.json", "'num_hidden_layers'", "num_hidden_groups = 5"]) { _ = try config(grouped) }
    }

    func testConfigDefaultsAndActivations() throws {
        let bare = try config(edited(Self.bertJSON) {
            for key in ["hidden_act", "hidden_dropout_prob", "layer_norm_eps", "pad_token_id"] { $0[key] = nil }
            $0["num_labels"] = .int(5)
        })
        XCTAssertEqual(bare.hiddenAct, .erf)
        XCTAssertEqual(bare.hiddenDropoutProb, 0.1)
        XCTAssertEqual(bare.layerNormEps, 1e-12)
        XCTAssertEqual(bare.numLabels, 5)
        for (name, form) in [("gelu_new", GELUForm.tanh), ("gelu_pytorch_tanh", .tanh), ("gelu_fast", .tanh)] {
            XCTAssertEqual(try config(edited(Self.bertJSON) { $0["hidden_act"] = .string(name) }).hiddenAct, form)
        }
    }

    func testConfigErrorsNameFileAndKey() throws {
        let failures: [([String], (inout [String: JSONValue]) -> Void)] = [
            (["config.json", "model_type", "'gpt2'", "bert, roberta, albert"], { $0["model_type"] = .string("gpt2") }),
            (["config.json", "'model_type'", "missing"], { $0["model_type"] = nil }),
            (["config.json", "'hidden_size'", "missing"], { $0["hidden_size"] = nil }),
            (["config.json", "'hidden_size'", "770", "num_attention_heads = 12"], { $0["hidden_size"] = .int(770) }),
            (["config.json", "'vocab_size'", "positive"], { $0["vocab_size"] = .int(0) }),
            (["config.json", "'num_hidden_layers'", "integer"], { $0["num_hidden_layers"] = .double(2.5) }),
            (["config.json", "'hidden_act'", "relu", "gelu_new"], { $0["hidden_act"] = .string("relu") }),
            (["config.json", "'hidden_dropout_prob'", "[0, 1)"], { $0["hidden_dropout_prob"] = .double(1.5) }),
            (["config.json", "'pad_token_id'", "0..<30522"], { $0["pad_token_id"] = .int(40000) }),
            (["config.json", "'problem_type'", "regression"], { $0["problem_type"] = .string("ranking") }),
            (["config.json", "'position_embedding_type'", "relative_key", "absolute positions only"],
             { $0["position_embedding_type"] = .string("relative_key") }),
            (["config.json", "'num_labels'", "2 entries of id2label"], {
                $0["id2label"] = .object(["0": .string("no"), "1": .string("yes")])
                $0["num_labels"] = .int(3)
            }),
        ]
        for (fragments, edit) in failures {
            let json = try edited(Self.bertJSON, edit)
            assertFails(fragments) { _ = try config(json) }
        }
        assertFails(["config.json", "not a JSON object"]) { _ = try config("[]") }
    }

    func testConfigWrittenBackKeepsUnknownKeys() throws {
        let bert = try config(Self.bertJSON)
        let data = try bert.jsonData(updating: [
            "architectures": .array([.string("BertForSequenceClassification")]),
            "num_labels": .int(3),
            "problem_type": .string("single_label_classification"),
        ])
        let back = try ModelConfig(jsonData: data, source: "written")
        XCTAssertEqual(back.numLabels, 3)
        XCTAssertEqual(back.id2label, [0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"])
        XCTAssertEqual(back.problemType, "single_label_classification")
        XCTAssertEqual(back.raw["transformers_version"], .string("4.41.0"))
        XCTAssertEqual(back.raw["hidden_size"], .int(768))
        XCTAssertEqual(back.raw["classifier_dropout"], .null)
        assertFails(["'problem_type'"]) { _ = try bert.jsonData(updating: ["problem_type": .string("ranking")]) }
    }

    // MARK: Checkpoint folders

    private func makeCheckpoint(config: String = bertJSON) throws -> URL {
        let folder = try makeFolder()
        try Data(config.utf8).write(to: folder.appendingPathComponent("config.json"))
        return folder
    }

    func testSingleFileFolder() throws {
        let folder = try makeCheckpoint()
        try writeTensors([("bert.pooler.dense.bias", [2], [1, 2]), ("bert.pooler.dense.weight", [2, 2], [1, 2, 3, 4])],
                         to: folder.appendingPathComponent("model.safetensors"))
        try Data("{}".utf8).write(to: folder.appendingPathComponent("tokenizer.json"))
        let checkpoint = try CheckpointFolder(directory: folder)
        XCTAssertEqual(checkpoint.tokenizerURL?.lastPathComponent, "tokenizer.json")
        XCTAssertEqual(try checkpoint.config().hiddenSize, 768)
        XCTAssertEqual(try checkpoint.loadTensorNames(), ["bert.pooler.dense.bias", "bert.pooler.dense.weight"])
        XCTAssertEqual(checkpoint.info("bert.pooler.dense.weight")?.shape, [2, 2])
        XCTAssertEqual(try checkpoint.floats("bert.pooler.dense.weight", shape: [2, 2]), [1, 2, 3, 4])
        assertFails(["model.safetensors", "'bert.pooler.dense.weight'", "[2, 2]", "expected [4]"]) {
            _ = try checkpoint.floats("bert.pooler.dense.weight", shape: [4])
        }
        assertFails(["model.safetensors", "'classifier.weight'", "missing"]) { _ = try checkpoint.floats("classifier.weight") }
    }

    func testShardedFolder() throws {
        let folder = try makeCheckpoint()
        try writeTensors([("a", [2], [1, 2]), ("b", [1], [3])],
                         to: folder.appendingPathComponent("model-00001-of-00002.safetensors"))
        try writeTensors([("c", [3], [4, 5, 6])], to: folder.appendingPathComponent("model-00002-of-00002.safetensors"))
        let index = """
        {"metadata": {"total_size": 24}, "weight_map": {"a": "model-00001-of-00002.safetensors",
         "b": "model-00001-of-00002.safetensors", "c": "model-00002-of-00002.safetensors"}}
        """
        let indexURL = folder.appendingPathComponent("model.safetensors.index.json")
        try Data(index.utf8).write(to: indexURL)
        let checkpoint = try CheckpointFolder(directory: folder)
        XCTAssertNil(checkpoint.tokenizerURL)
        XCTAssertEqual(try checkpoint.loadTensorNames(), ["a", "b", "c"])
        XCTAssertEqual(try checkpoint.floats("c"), [4, 5, 6])
        XCTAssertEqual(try checkpoint.floats("b"), [3])
        assertFails(["model.safetensors.index.json", "'d'", "missing"]) { _ = try checkpoint.floats("d") }

        try Data(index.replacingOccurrences(of: #""c": "model-00002"#, with: #""c": "model-00001"#).utf8)
            .write(to: indexURL)
        assertFails(["model-00001-of-00002.safetensors", "'c'", "missing"]) { _ = try CheckpointFolder(directory: folder) }
        try Data(index.replacingOccurrences(of: "model-00002-of-00002", with: "model-00003-of-00003").utf8)
            .write(to: indexURL)
        assertFails(["model.safetensors.index.json", "model-00003-of-00003.safetensors", "not found"]) {
            _ = try CheckpointFolder(directory: folder)
        }
        try Data(index.replacingOccurrences(of: "model-00002-of-00002", with: "../model-00002-of-00002").utf8)
            .write(to: indexURL)
        assertFails(["model.safetensors.index.json", "weight_map"]) { _ = try CheckpointFolder(directory: folder) }
    }

    func testPickleOnlyFolderIsRefused() throws {
        let folder = try makeCheckpoint()
        try Data([0x80, 0x02]).write(to: folder.appendingPathComponent("pytorch_model.bin"))
        assertFails([folder.path, "pytorch_model.bin", "refuses to unpickle", "safetensors",
                     "save_pretrained('\(folder.path)')", "from_pretrained('\(folder.path)')"]) {
            _ = try CheckpointFolder(directory: folder)
        }
    }

    func testMissingFolderConfigOrWeights() throws {
        let folder = try makeFolder()
        let absent = folder.appendingPathComponent("absent")
        assertFails([absent.path, "checkpoint folder not found"]) { _ = try CheckpointFolder(directory: absent) }
        assertFails([folder.path, "config.json not found"]) { _ = try CheckpointFolder(directory: folder) }
        try Data(Self.bertJSON.utf8).write(to: folder.appendingPathComponent("config.json"))
        assertFails([folder.path, "model.safetensors or model.safetensors.index.json not found"]) {
            _ = try CheckpointFolder(directory: folder)
        }
    }

    func testCheckpointWriterRoundTrip() throws {
        let source = try makeFolder()
        let tokenizer = source.appendingPathComponent("tokenizer.json")
        let vocab = source.appendingPathComponent("vocab.txt")
        try Data(#"{"model": {}}"#.utf8).write(to: tokenizer)
        try Data("[PAD]\n[UNK]\n".utf8).write(to: vocab)
        let destination = try makeFolder().appendingPathComponent("run/checkpoint-100")
        let configData = try config(Self.bertJSON).jsonData(updating: ["num_labels": .int(3)])
        try withTensorViews([("classifier.weight", [3, 2], [1, 2, 3, 4, 5, 6]), ("classifier.bias", [3], [0, 0, 1])]) {
            try CheckpointWriter.write(config: configData, tensors: $0, to: destination, extraFiles: [tokenizer, vocab])
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: destination.path).sorted(),
                       ["config.json", "model.safetensors", "tokenizer.json", "vocab.txt"])
        let checkpoint = try CheckpointFolder(directory: destination)
        XCTAssertEqual(try checkpoint.config().numLabels, 3)
        XCTAssertEqual(try checkpoint.floats("classifier.bias", shape: [3]), [0, 0, 1])
        XCTAssertEqual(try Data(contentsOf: destination.appendingPathComponent("vocab.txt")), try Data(contentsOf: vocab))

        assertFails(["config.json", "would replace"]) {
            try CheckpointWriter.write(config: configData, tensors: [], to: destination,
                                       extraFiles: [destination.appendingPathComponent("config.json")])
        }
        assertFails(["config.json", "not a JSON object"]) {
            try CheckpointWriter.write(config: Data("[]".utf8), tensors: [], to: destination, extraFiles: [])
        }
    }
}
