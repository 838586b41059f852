// The dp-train command line. It only parses options into the libraries' configuration types;
// all the work happens in DPTrain and DPModels.
//
//   dp-train bench --model artifacts/models/all-MiniLM-L6-v2 --seq-len 128 --threads 2
//   dp-train bench --model bert-base --batch-size 16 --seq-len 256
//   dp-train inspect --model artifacts/models/all-MiniLM-L6-v2

import ArgumentParser
import DPBackend
import DPData
import DPModels
import DPTrain
import Foundation

@main
struct DPTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dp-train",
        abstract: "Fine-tune BERT, RoBERTa and ALBERT encoders with data parallelism over MPI.",
        subcommands: [Train.self, Evaluate.self, Predict.self, Embed.self, Tokenize.self, Bench.self, Inspect.self])

    static func main() {
        do {
            main(try expandingConfigFile(Array(CommandLine.arguments.dropFirst())))
        } catch {
            exit(withError: error)
        }
    }

    /// `train --config FILE` becomes `train <the file's options> <the command line's>`, so that
    /// the command line wins: a repeated option keeps its last value.
    static func expandingConfigFile(_ arguments: [String]) throws -> [String] {
        guard arguments.first == "train" else { return arguments }
        var path: String?
        for (index, argument) in arguments.enumerated() {
            if argument == "--config", index + 1 < arguments.count { path = arguments[index + 1] }
            if argument.hasPrefix("--config=") { path = String(argument.dropFirst("--config=".count)) }
        }
        guard let path else { return arguments }
        let groups = [longNames(of: Train()), longNames(of: DataColumnOptions()), longNames(of: BackendOption())]
        let fromFile = try ConfigFile.arguments(contentsOf: URL(fileURLWithPath: path),
                                                options: groups.reduce(Set()) { $0.union($1.options) }.subtracting(["config"]),
                                                flags: groups.reduce(Set()) { $0.union($1.flags) })
        return ["train"] + fromFile + arguments.dropFirst()
    }
}

/// The long option and flag names of a command, read off its property wrappers the same way
/// swift-argument-parser derives them (maxGradNorm -> max-grad-norm), so that the config file
/// accepts exactly the command line's options without a second list to keep in step.
func longNames(of arguments: ParsableArguments) -> (options: Set<String>, flags: Set<String>) {
    var options: Set<String> = [], flags: Set<String> = []
    for child in Mirror(reflecting: arguments).children {
        guard let label = child.label, label.hasPrefix("_") else { continue }
        let name = label.dropFirst().reduce(into: "") { name, character in
            if character.isUppercase { name += "-" + character.lowercased() } else { name.append(character) }
        }
        let wrapper = String(describing: type(of: child.value))
        if wrapper.hasPrefix("Option<") { options.insert(name) }
        if wrapper.hasPrefix("Flag<") { flags.insert(name) }
    }
    return (options, flags)
}

/// A Hugging Face checkpoint folder, or one of the named random-init sizes.
struct ModelOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("A Hugging Face checkpoint folder (config.json + model.safetensors), "
        + "or a named size: \(ModelConfig.namedSizes.joined(separator: ", ")).", valueName: "dir|size"))
    var model: String

    var source: ModelSource {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: model, isDirectory: &isDirectory), isDirectory.boolValue {
            return .directory(URL(fileURLWithPath: model))
        }
        return .named(model)
    }

    func validate() throws {
        if case .named(let name) = source, ModelConfig.named(name) == nil {
            throw ValidationError("--model \(model): no such folder, and not a named size "
                + "(\(ModelConfig.namedSizes.joined(separator: ", ")))")
        }
    }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time full training steps (forward, loss, backward, clipping, AdamW) on synthetic tokens.",
        discussion: "Prints one JSON line with median_step_s, tokens_per_s, flops_per_step and peak_rss_mb.")

    @OptionGroup var model: ModelOption
    @OptionGroup var backend: BackendOption
    @Option(name: .long, help: "Examples per step.") var batchSize = 16
    @Option(name: .long, help: "Tokens per example.") var seqLen = 128
    @Option(name: .long, help: "Threads for OpenBLAS and the row-parallel loops.") var threads = 1
    @Option(name: .long, help: "Timed steps, after one untimed warm-up step.") var steps = 5
    @Option(name: .long, help: "Seed for the synthetic tokens, targets and any fresh weights.") var seed: UInt64 = 0

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        guard seqLen >= 1 else { throw ValidationError("--seq-len must be at least 1, got \(seqLen)") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1, got \(steps)") }
    }

    func run() throws {
        var options = BenchmarkOptions(model: model.source)
        options.batchSize = batchSize
        options.sequenceLength = seqLen
        options.threads = threads
        options.steps = steps
        options.seed = seed
        let result = try runBenchmark(options, backend: try backend.makeBackend(threads: threads))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        print(String(decoding: try encoder.encode(result), as: UTF8.self))
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load a checkpoint, validate every tensor, and print its architecture and parameter table.")

    @OptionGroup var model: ModelOption

    func run() throws {
        let loaded: EncoderModel
        var initialised: [String] = []
        switch model.source {
        case .directory(let url):
            let (encoder, report) = try EncoderModel.load(from: url, backend: CPUBackend(threads: 1))
            loaded = encoder
            initialised = report.initialised
            if !report.unused.isEmpty { print("unused tensors: \(report.unused.joined(separator: ", "))") }
        case .named(let name):
            guard let config = ModelConfig.named(name) else { throw ValidationError("unknown size \(name)") }
            loaded = EncoderModel.initialised(layout: EncoderLayout(config: config, head: HeadSpec(config: config)),
                                              backend: CPUBackend(threads: 1), seed: 0)
        }
        let layout = loaded.layout, config = layout.config
        print("\(config.modelType.rawValue): \(config.numHiddenLayers) layers, hidden \(config.hiddenSize), "
            + "\(config.numAttentionHeads) heads, intermediate \(config.intermediateSize), GELU \(config.hiddenAct.rawValue)")
        print("head: \(layout.head.pooling.rawValue) pooling, \(layout.head.task.rawValue), \(layout.head.numLabels) outputs")
        let decaying = layout.table.specs.filter(\.decays)
        print("parameters: \(layout.table.totalCount) in \(layout.table.specs.count) tensors; "
            + "weight decay on \(layout.table.decayingCount) in \(decaying.count) tensors, "
            + "none on \(layout.table.totalCount - layout.table.decayingCount) in "
            + "\(layout.table.specs.count - decaying.count) (biases and LayerNorm)")
        if !initialised.isEmpty { print("initialised fresh: \(initialised.joined(separator: ", "))") }
        for spec in layout.table.specs {
            print("  \(spec.name) \(spec.shape) \(spec.decays ? "decay" : "no-decay") layer \(spec.layer.map(String.init) ?? "-")")
        }
    }
}
