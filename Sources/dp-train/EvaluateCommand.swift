// `dp-train evaluate` and `dp-train predict` on a checkpoint that `train` wrote (or any
// …ForSequenceClassification folder): the head, the task and the label names come from its
// config.json, the tokenizer from its tokenizer.json.
//
//   dp-train evaluate --model run/checkpoint-600 --data dev.tsv --text-column sentence
//   dp-train predict --model run/checkpoint-600 --data test.csv --id-column id --output submission.csv
//   dp-train predict --model fold-0/checkpoint-600 --model fold-1/checkpoint-600 ... (an ensemble)
//
// An ensemble averages regression outputs, and for classification the class probabilities
// (soft voting); both commands take one, and evaluate scores it as a model whose logits are the
// logs of the averaged probabilities, so that its loss is the ensemble's cross-entropy.

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

/// Several checkpoints' outputs for the same rows, combined: the mean regression output, or the
/// log of the mean of the class probabilities, in the layout a single model's outputs have.
struct Ensemble {
    let task: Task
    let labels: [String]
    let outputs: [Float]  // (rows, K)
    var K: Int { task == .regression ? 1 : labels.count }

    /// `examples` reads the rows with a checkpoint's tokenizer (and labels).
    init(folders: [String], backend: any Backend, batchSize: Int,
         examples: (CheckpointModel) throws -> [Example]) throws {
        var first: (task: Task, labels: [String], sums: [Double])?
        for folder in folders {
            let checkpoint = try CheckpointModel(folder: folder, backend: backend)
            let outputs = try checkpoint.outputs(for: examples(checkpoint), batchSize: batchSize).map(Double.init)
            let values = checkpoint.task == .regression ? outputs : Self.softmaxRows(outputs, K: checkpoint.model.layout.K)
            guard let known = first else {
                first = (checkpoint.task, checkpoint.labels, values)
                continue
            }
            guard checkpoint.task == known.task, checkpoint.labels == known.labels else {
                let describe = { (task: Task, labels: [String]) in
                    task == .regression ? "regression" : "classification into \(labels.joined(separator: ", "))" }
                throw CheckpointError.invalidValue(
                    file: URL(fileURLWithPath: folder).appendingPathComponent("config.json").path, key: "id2label",
                    value: describe(checkpoint.task, checkpoint.labels),
                    reason: "differs from \(folders[0])'s \(describe(known.task, known.labels)); an ensemble needs one task")
            }
            first!.sums = zip(known.sums, values).map(+)
        }
        guard let first else { preconditionFailure("an ensemble of no models") }
        task = first.task
        labels = first.labels
        let means = first.sums.map { $0 / Double(folders.count) }
        outputs = task == .regression ? means.map { Float($0) } : means.map { Float(log($0)) }
    }

    /// Each row of K logits as probabilities.
    private static func softmaxRows(_ logits: [Double], K: Int) -> [Double] {
        stride(from: 0, to: logits.count, by: K).flatMap { start -> [Double] in
            let row = logits[start..<(start + K)], largest = row.max()!
            let exponentials = row.map { exp($0 - largest) }
            let sum = exponentials.reduce(0, +)
            return exponentials.map { $0 / sum }
        }
    }
}

/// The help of --model for both commands.
private let modelHelp = ArgumentHelp(
    "A checkpoint folder; repeated, an ensemble (e.g. one model per fold): regression outputs are averaged, class probabilities are averaged before the most likely class is taken.")

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score a checkpoint on labelled data; prints the metrics as JSON.")

    @Option(name: .long, help: modelHelp) var model: [String]
    @Option(name: .long, help: "Labelled data: CSV, TSV or JSONL.") var data: String
    @OptionGroup var columns: DataColumnOptions
    @Option(name: .long, help: "Examples per batch.") var batchSize = 64
    @Option(name: .long, help: "Threads.") var threads = ProcessInfo.processInfo.activeProcessorCount
    @OptionGroup var backend: BackendOption
    @Option(name: .long, help: "Also write the metrics to this JSON file.") var output: String?

    func validate() throws {
        guard !model.isEmpty else { throw ValidationError("--model: give at least one checkpoint folder") }
    }

    func run() throws {
        let table = try Table(contentsOf: URL(fileURLWithPath: data))
        var set: ExampleSet?  // the first model's reading, whose targets score the ensemble
        let ensemble = try Ensemble(folders: model, backend: backend.makeBackend(threads: threads),
                                    batchSize: batchSize) { checkpoint in
            let examples = try loadExamples(table: table, rows: Array(0..<table.rowCount), columns: columns.columns,
                                            task: checkpoint.task, labels: checkpoint.labels,
                                            tokenizer: checkpoint.tokenizer, maxLength: columns.maxLength)
            set = set ?? examples
            return examples.examples
        }
        guard let set else { preconditionFailure("an ensemble of no models") }
        var metrics: [String: Any] = evaluationMetrics(outputs: ensemble.outputs, set: set, numLabels: ensemble.K)
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

    @Option(name: .long, help: modelHelp) var model: [String]
    @Option(name: .long, help: "Data: CSV, TSV or JSONL (labels not needed).") var data: String
    @Option(name: .long, help: "The column holding the text.") var textColumn = "text"
    @Option(name: .long, help: "A second text column, for sentence pairs.") var textPairColumn: String?
    @Option(name: .long, help: "The column of ids; the row number (from 0) when absent.") var idColumn: String?
    @Option(name: .long, help: "Tokens per example, special tokens included.") var maxLength = 128
    @Option(name: .long, help: "Examples per batch.") var batchSize = 64
    @Option(name: .long, help: "Threads.") var threads = ProcessInfo.processInfo.activeProcessorCount
    @OptionGroup var backend: BackendOption
    @Option(name: .long, help: "The CSV to write.") var output: String

    func validate() throws {
        guard !model.isEmpty else { throw ValidationError("--model: give at least one checkpoint folder") }
    }

    func run() throws {
        let backend = try backend.makeBackend(threads: threads)
        let table = try Table(contentsOf: URL(fileURLWithPath: data))
        let rows = Array(0..<table.rowCount)
        let ids = try idColumn.map { try table.column($0) } ?? rows.map(String.init)
        let ensemble = try Ensemble(folders: model, backend: backend, batchSize: batchSize) { checkpoint in
            try encodeTexts(table: table, rows: rows, text: textColumn, pair: textPairColumn,
                            tokenizer: checkpoint.tokenizer, maxLength: maxLength)
        }
        let K = ensemble.K
        var csv = "id,prediction\n"
        for row in rows {
            let scores = ensemble.outputs[(row * K)..<((row + 1) * K)]
            let prediction = ensemble.task == .regression
                ? String(scores[row * K]) : ensemble.labels[scores.firstIndex(of: scores.max()!)! - row * K]
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
