// `dp-train bench`: full training steps on synthetic tokens (forward, MSE loss over a mean-pooled
// regression head, backward, clipping at 1.0, AdamW), timed step by step. The same step is
// what scripts/bench/pytorch_step.py times, so the two can be compared as a ratio.

import DPBackend
import DPModels
import DPTensor
import Foundation

public enum ModelSource: Sendable, Equatable {
    case directory(URL)
    case named(String)
}

public struct BenchmarkOptions: Sendable {
    public var model: ModelSource
    public var batchSize = 16
    public var sequenceLength = 128
    public var threads = 1
    public var steps = 5
    public var seed: UInt64 = 0

    public init(model: ModelSource) { self.model = model }
}

public struct BenchmarkResult: Codable, Sendable {
    public var median_step_s: Double
    public var tokens_per_s: Double
    public var flops_per_step: Double
    public var peak_rss_mb: Double
    public var step_s: [Double]
    public var model: String
    public var parameters: Int
    public var batch_size: Int
    public var seq_len: Int
    public var threads: Int
    public var backend: String
    public var precision: String
}

/// Model FLOPs of one training step, the formula scripts/bench/pytorch_step.py uses too:
/// 6 per non-embedding parameter (everything outside `embeddings.`) per token (forward 2, backward 4) plus attention's
/// 12 * L * B * T^2 * C (QK^T and PV, forward and backward).
public func trainingFlops(layout: EncoderLayout, B: Int, T: Int) -> Double {
    let embedding = layout.table.specs.filter { $0.name.hasPrefix("embeddings.") }.reduce(0) { $0 + $1.count }
    let nonEmbedding = Double(layout.table.totalCount - embedding)
    let attention = 12 * Double(layout.schedule.count) * Double(B) * Double(T * T) * Double(layout.C)
    return 6 * nonEmbedding * Double(B * T) + attention
}

public func runBenchmark(_ options: BenchmarkOptions, backend: any Backend) throws -> BenchmarkResult {
    let head = HeadSpec(pooling: .mean, task: .regression, numLabels: 1)
    let model: EncoderModel
    let name: String
    switch options.model {
    case .directory(let url):
        model = try EncoderModel.load(from: url, head: head, backend: backend, seed: options.seed).0
        name = url.lastPathComponent
    case .named(let size):
        guard let config = ModelConfig.named(size) else { throw BenchmarkError.unknownSize(size) }
        model = EncoderModel.initialised(layout: EncoderLayout(config: config, head: head), backend: backend,
                                         seed: options.seed)
        name = size
    }
    let config = model.layout.config
    let (B, T) = (options.batchSize, options.sequenceLength)
    guard T <= config.maxPositionEmbeddings - (config.modelType == .roberta ? config.padTokenId + 1 : 0) else {
        throw BenchmarkError.sequenceTooLong(T, config.maxPositionEmbeddings)
    }
    var generator = SeededGenerator(seed: options.seed)
    let firstId = UInt64(config.padTokenId + 1), idRange = UInt64(config.vocabSize) - firstId
    let sequences = (0..<B).map { _ in (0..<T).map { _ in Int32(firstId + generator.next() % idRange) } }
    let batch = EncoderBatch(sequences: sequences, modelType: config.modelType, padTokenId: config.padTokenId)
    let targets = Targets.regression((0..<B).map { _ in generator.nextGaussian() })

    let optimizer = AdamWOptimizer(table: model.table, settings: AdamWSettings(), backend: backend)
    var times: [Double] = []
    for step in 0...options.steps { // step 0 warms up caches and the arena, and is not timed
        let settings = StepSettings(
            learningRate: 2e-5, maxGradientNorm: 1,
            dropout: DropoutSettings(hidden: config.hiddenDropoutProb, attention: config.attentionProbsDropoutProb,
                                     classifier: config.classifierDropoutProb ?? config.hiddenDropoutProb,
                                     seed: options.seed, step: UInt64(step)))
        let start = DispatchTime.now().uptimeNanoseconds
        _ = trainingStep(model: model, optimizer: optimizer, batch: batch, targets: targets, settings: settings)
        // A GPU may still be running AdamW: reading one parameter back waits for it, so that the
        // step is timed whole, as PyTorch's side synchronizes before reading its clock.
        var parameter: Float = 0
        backend.download(&parameter, from: model.parameters, count: 1)
        if step > 0 { times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
    }
    let median = times.sorted()[times.count / 2]
    return BenchmarkResult(median_step_s: median, tokens_per_s: Double(B * T) / median,
                           flops_per_step: trainingFlops(layout: model.layout, B: B, T: T),
                           peak_rss_mb: peakResidentMegabytes(), step_s: times, model: name,
                           parameters: model.parameterCount, batch_size: B, seq_len: T, threads: options.threads,
                           backend: backend.name, precision: backend.precision.rawValue)
}

public enum BenchmarkError: Error, CustomStringConvertible {
    case unknownSize(String)
    case sequenceTooLong(Int, Int)

    public var description: String {
        switch self {
        case .unknownSize(let name):
            return "--model \(name): not a folder and not a named size (\(ModelConfig.namedSizes.joined(separator: ", ")))"
        case let .sequenceTooLong(length, positions):
            return "--seq-len \(length): longer than the model's \(positions) position embeddings allow"
        }
    }
}

/// The process's peak resident set so far, in MiB (Linux reports ru_maxrss in KiB).
public func peakResidentMegabytes() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}
