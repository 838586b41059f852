// dp-train embed: sentence embeddings, one JSON line {"embedding": [...]} per input text.
//
//   dp-train embed --model artifacts/models/all-MiniLM-L6-v2 --input sentences.txt --normalize --output emb.jsonl
//
// With mean pooling and --normalize this is what sentence-transformers' all-MiniLM-L6-v2 returns.

import ArgumentParser
import DPBackend
import DPData
import DPModels
import DPTokenizers
import DPTrain
import Foundation

extension EmbeddingPooling: ExpressibleByArgument {}

struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Embed texts with an encoder: pooled last hidden states, one JSON line per text.",
        discussion: "The input is one text per line, or a .csv/.tsv/.jsonl table with named columns.")

    @Option(name: .long, help: "A Hugging Face checkpoint folder (config.json, model.safetensors, tokenizer.json).")
    var model: String
    @Option(name: .long, help: "One text per line, or a CSV/TSV/JSONL file.") var input: String
    @Option(name: .long, help: "The column holding the texts (tables; plain text files have `text`).") var textColumn = "text"
    @Option(name: .long, help: "mean: over the real tokens (sentence-transformers); cls: the first token.")
    var pooling: EmbeddingPooling = .mean
    @Flag(name: .long, help: "Scale each embedding to unit length.") var normalize = false
    @Option(name: .long, help: "Tokens per text; default: sentence_bert_config.json's max_seq_length, else the model's positions.")
    var maxLength: Int?
    @Option(name: .long, help: "Texts per forward pass.") var batchSize = 64
    @Option(name: .long, help: "Threads.") var threads = ProcessInfo.processInfo.activeProcessorCount
    @OptionGroup var backend: BackendOption
    @Option(name: .long, help: "The JSON-lines file to write.") var output: String

    func validate() throws {
        if let maxLength, maxLength < 2 { throw ValidationError("--max-length must be at least 2, got \(maxLength)") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }

    func run() throws {
        let folder = URL(fileURLWithPath: model)
        let tokenizer = try Tokenizer(contentsOf: folder)
        let texts = try Table(contentsOf: URL(fileURLWithPath: input)).column(textColumn)
        let (encoder, _) = try EncoderModel.load(from: folder, head: HeadSpec(pooling: pooling.head, task: .regression, numLabels: 1),
                                                 backend: backend.makeBackend(threads: threads))
        let length = maxLength ?? sentenceTransformersMaxLength(folder) ?? encoder.layout.config.maxPositionEmbeddings
        let embeddings = embed(texts, model: encoder, tokenizer: tokenizer, maxLength: length, batchSize: batchSize,
                               normalize: normalize)
        var out = ""
        for vector in embeddings {
            out += "{\"embedding\": [" + vector.map { "\($0)" }.joined(separator: ", ") + "]}\n"
        }
        try AtomicFile.save(Data(out.utf8), to: URL(fileURLWithPath: output))
        print("wrote \(embeddings.count) embeddings of \(encoder.layout.C) floats to \(output) (max length \(length))")
    }

    /// sentence-transformers truncates to its own max_seq_length, not the model's positions.
    private func sentenceTransformersMaxLength(_ folder: URL) -> Int? {
        let url = folder.appendingPathComponent("sentence_bert_config.json")
        guard let data = try? Data(contentsOf: url),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return object["max_seq_length"] as? Int
    }
}
