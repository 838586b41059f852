// `dp-train evaluate` and `dp-train predict` on a checkpoint that `train` wrote (or any
// …ForSequenceClassification folder): the head, the task and the label names come from its
// config.json, the tokenizer from its tokenizer.json.
//
//   dp-train evaluate --model run/checkpoint-600 --data dev.tsv --text-column sentence
//   dp-train predict --model run/checkpoint-600 --data test.csv --id-column id --output submission.csv

import ArgumentParser
import DPBackend
import DPData
import DPDistributed
import DPModels
import DPTokenizers
import DPTrain
import Foundation

/// A loaded checkpoint with what it needs to read data.
struct CheckpointModel {
    let model: EncoderModel
    let tokenizer: Tokenizer
    let labels: [String]

    init(folder: String, backend: any Backend) throws {
        let url = URL(fileURLWithPath: folder)
        let config = try CheckpointFolder(directory: url).config()
        (model, _) = try EncoderModel.load(from: url, head: HeadSpec(config: config), backend: backend)
        tokenizer = try Tokenizer(contentsOf: url)
        let head = model.layout.head
        labels = head.task == .classification
            ? (0..<head.numLabels).map { config.id2label?[$0] ?? String($0) } : []
    }

    var task: Task { model.layout.head.task }

    func outputs(for examples: [Example], batchSize: Int) throws -> [Float] {
        try predictOutputs(model: model, set: ExampleSet(examples: examples, task: task, labels: labels),
                           communicator: SingleProcessCommunicator(), batchSize: batchSize)
    }
}

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score a checkpoint on labelled data; prints the metrics as JSON.")

    @Option(name: .long, help: "A checkpoint folder.") var model: String
    @Option(name: .long, help: "Labelled data: CSV, TSV or JSONL.") var data: String
    @OptionGroup var columns: DataColumnOptions
    @Option(name: .long, help: "Examples per batch.") var batchSize = 64
    @Option(name: .long, help: "Threads.") var threads = ProcessInfo.processInfo.activeProcessorCount
    @OptionGroup var backend: BackendOption
    @Option(name: .long, help: "Also write the metrics to this JSON file.") var output: String?

    func run() throws {
        let checkpoint = try CheckpointModel(folder: model, backend: backend.makeBackend(threads: threads))
        let table = try Table(contentsOf: URL(fileURLWithPath: data))
        let set = try loadExamples(table: table, rows: Array(0..<table.rowCount), columns: columns.columns,
                                   task: checkpoint.task, labels: checkpoint.labels, tokenizer: checkpoint.tokenizer,
                                   maxLength: columns.maxLength)
        let outputs = try checkpoint.outputs(for: set.examples, batchSize: batchSize)
        var metrics: [String: Any] = evaluationMetrics(outputs: outputs, set: set, numLabels: checkpoint.model.layout.K)
            .mapValues { $0.isFinite ? $0 as Any : NSNull() }
        metrics["examples"] = set.count
        let json = try JSONSerialization.data(withJSONObject: metrics, options: [.sortedKeys])
        print(String(decoding: json, as: UTF8.self))
        if let output { try AtomicFile.save(json + Data("\n".utf8), to: URL(fileURLWithPath: output)) }
    }
}

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a CSV of id,prediction for every row, like a Kaggle submission.")

    @Option(name: .long, help: "A checkpoint folder.") var model: String
    @Option(name: .long, help: "Data: CSV, TSV or JSONL (labels not needed).") var data: String
    @Option(name: .long, help: "The column holding the text.") var textColumn = "text"
    @Option(name: .long, help: "A second text column, for sentence pairs.") var textPairColumn: String?
    @Option(name: .long, help: "The column of ids; the row number (from 0) when absent.") var idColumn: String?
    @Option(name: .long, help: "Tokens per example, special tokens included.") var maxLength = 128
    @Option(name: .long, help: "Examples per batch.") var batchSize = 64
    @Option(name: .long, help: "Threads.") var threads = ProcessInfo.processInfo.activeProcessorCount
    @OptionGroup var backend: BackendOption
    @Option(name: .long, help: "The CSV to write.") var output: String

    func run() throws {
        let checkpoint = try CheckpointModel(folder: model, backend: backend.makeBackend(threads: threads))
        let table = try Table(contentsOf: URL(fileURLWithPath: data))
        let rows = Array(0..<table.rowCount)
        let examples = try encodeTexts(table: table, rows: rows, text: textColumn, pair: textPairColumn,
                                       tokenizer: checkpoint.tokenizer, maxLength: maxLength)
        let ids = try idColumn.map { try table.column($0) } ?? rows.map(String.init)
        let outputs = try checkpoint.outputs(for: examples, batchSize: batchSize)
        let K = checkpoint.model.layout.K
        var csv = "id,prediction\n"
        for row in rows {
            let prediction: String
            if checkpoint.task == .regression {
                prediction = String(outputs[row])
            } else {
                let logits = outputs[(row * K)..<((row + 1) * K)]
                prediction = checkpoint.labels[logits.firstIndex(of: logits.max()!)! - row * K]
            }
            csv += "\(csvField(ids[row])),\(csvField(prediction))\n"
        }
        try AtomicFile.save(Data(csv.utf8), to: URL(fileURLWithPath: output))
        print("wrote \(rows.count) predictions to \(output)")
    }

    /// RFC 4180 quoting, only where a field needs it.
    private func csvField(_ value: String) -> String {
        guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
