// The data-parallel training loop, the same on every rank:
//   1. every rank takes the step's global batch (a function of seed and step) and computes its
//      contiguous shard, micro-batch by micro-batch, accumulating the gradient of the sum of
//      its examples' losses scaled by 1/(examples in the global batch);
//   2. allreduces sum the gradients (bucket by bucket during the last micro-batch's backward,
//      unless --overlap-allreduce false), which makes them the global batch's average, then
//      one more the loss sum and the stop flag;
//   3. the average is clipped by its global norm, and AdamW steps with the scheduled rate.
// Every rank then holds the same gradient, so every decision (skip a non-finite step, stop on a
// signal) is taken identically everywhere without further talk. Rank 0 alone logs, evaluates
// (on predictions gathered from every rank's shard) and writes checkpoints.
//
//   dp-train train --ranks 1 ...          one process, no launcher
//   mpirun -np 4 dp-train train ...       four ranks on one node
//   srun --mpi=pmix dp-train train ...    inside a Slurm allocation

import DPBackend
import DPDistributed
import DPModels
import DPTensor
import Foundation

public struct DropoutRates: Sendable, Equatable {
    public var hidden: Float
    public var attention: Float
    public var classifier: Float

    public init(hidden: Float, attention: Float, classifier: Float) {
        self.hidden = hidden
        self.attention = attention
        self.classifier = classifier
    }
}

public struct TrainerSettings: Sendable {
    public var globalBatchSize = 16
    /// Examples per forward/backward pass on one rank; nil runs the whole shard at once.
    public var microBatchSize: Int?
    public var totalSteps: Int
    public var learningRate: Float = 2e-5
    public var warmupRatio: Double = 0.1
    /// 0 turns clipping off.
    public var maxGradientNorm: Float = 1
    /// Recorded in each checkpoint so that a resume keeps it; the optimizer's groups apply it.
    public var layerLearningRateDecay: Float = 1
    /// How the validation rows were split off --train ("fold 2 of 5, seed 0"); recorded and
    /// checked on resume like the decay, since another split would train on other rows.
    public var validationSplit: String?
    /// Batches of examples of similar length (the HF Trainer's group_by_length); recorded and
    /// checked on resume, since it changes the data order.
    public var groupByLength = false
    /// Mixout's probability (Lee et al. 2020); 0 is off. Recorded and checked on resume.
    public var mixout: Float = 0
    public var dropout: DropoutRates
    public var seed: UInt64 = 42
    public var logEvery = 10
    public var evalEvery: Int?
    public var saveEvery: Int?
    public var keep = 2
    public var checkParameters = false
    /// Sum each bucket of the gradient while backward computes the layers below it.
    public var overlapAllreduce = true
    /// Also log each layer's gradient norm (before clipping): Mosbach et al.'s sign of a failing
    /// run is the lower layers' norms collapsing while the top layers' stay.
    public var logLayerGradientNorms = false
    /// Non-finite steps in a row that are skipped before the run gives up.
    public var maxBadSteps = 5
    public var evalBatchSize = 64
    /// The evaluation metric that picks the best checkpoint; rmse and mae are minimised.
    public var metricForBest: String
    /// Stop once this many evaluations in a row fail to improve on the best metric by more than
    /// `earlyStoppingThreshold` (the HF Trainer's EarlyStoppingCallback); nil trains every step.
    public var earlyStoppingPatience: Int?
    public var earlyStoppingThreshold = 0.0
    /// Checkpoints and metrics.jsonl go here; nil keeps nothing.
    public var output: URL?
    /// Copied into every checkpoint, e.g. tokenizer.json.
    public var extraFiles: [URL] = []

    public init(totalSteps: Int, dropout: DropoutRates, metricForBest: String) {
        self.totalSteps = totalSteps
        self.dropout = dropout
        self.metricForBest = metricForBest
    }

    var minimisesMetric: Bool { ["rmse", "mae", "loss"].contains(metricForBest) }
}

public struct TrainingSummary: Sendable {
    public var steps: Int
    public var losses: [Float]
    public var finalMetrics: [String: Double]?
    /// The signal that stopped the run early, if one did.
    public var stoppedBy: Int32?
}

public final class DataParallelTrainer {
    public let model: EncoderModel
    public let optimizer: AdamWOptimizer
    public let communicator: Communicator
    public let settings: TrainerSettings
    public let train: ExampleSet
    public let validation: ExampleSet?
    public let schedule: DataSchedule
    public let learningRates: LinearWarmupDecay
    public private(set) var state: TrainerState
    private let log: TrainingLog?
    private let store: CheckpointStore?
    private var host: [Float]  // (P) staging for broadcasts and checksums
    private let exchange: GradientExchange
    private let mixout: Mixout?

    public init(model: EncoderModel, optimizer: AdamWOptimizer, communicator: Communicator,
                settings: TrainerSettings, train: ExampleSet, validation: ExampleSet?,
                resumeFrom checkpoint: URL? = nil) throws {
        self.model = model
        self.optimizer = optimizer
        self.communicator = communicator
        self.settings = settings
        self.train = train
        self.validation = validation
        schedule = DataSchedule(exampleCount: train.count, globalBatchSize: settings.globalBatchSize, seed: settings.seed,
                                lengths: settings.groupByLength ? train.examples.map(\.inputIds.count) : nil)
        learningRates = LinearWarmupDecay(peak: settings.learningRate, warmupRatio: settings.warmupRatio,
                                          totalSteps: settings.totalSteps)
        host = [Float](repeating: 0, count: model.parameterCount)
        store = settings.output.map(CheckpointStore.init(folder:))
        precondition(settings.mixout == 0 || optimizer.startingWeights != nil, "Mixout mixes toward the starting weights")
        mixout = settings.mixout > 0 ? Mixout(probability: settings.mixout, layout: model.layout,
                                              target: optimizer.startingWeights!, backend: model.backend) : nil
        exchange = GradientExchange(communicator: communicator, backend: model.backend, gradients: model.gradients,
                                    count: model.parameterCount, overlap: settings.overlapAllreduce,
                                    stageOnHost: !model.backend.memoryIsHost)
        state = TrainerState(step: 0, epoch: 0, totalSteps: settings.totalSteps, optimizerStep: 0, seed: settings.seed,
                             globalBatchSize: settings.globalBatchSize, trainExamples: train.count,
                             learningRate: settings.learningRate, badStepsInARow: 0,
                             metricForBest: settings.metricForBest, bestMetric: nil, bestStep: nil,
                             task: train.task.rawValue, labels: train.labels, worldSize: communicator.worldSize,
                             layerLearningRateDecay: settings.layerLearningRateDecay,
                             validationSplit: settings.validationSplit,
                             weightDecayTarget: optimizer.settings.decayTarget,
                             groupByLength: settings.groupByLength, evalsWithoutImprovement: 0,
                             mixout: settings.mixout)
        if let checkpoint, let store {
            let saved = try store.readState(at: checkpoint)
            try Self.checkCompatible(saved, with: state, path: checkpoint.appendingPathComponent(CheckpointStore.stateName).path)
            try optimizer.restore(from: checkpoint, step: saved.optimizerStep)
            state = saved
            state.worldSize = communicator.worldSize
        }
        let metricsURL = communicator.isRoot ? settings.output?.appendingPathComponent("metrics.jsonl") : nil
        log = communicator.isRoot ? try TrainingLog(metricsURL: metricsURL, resumeStep: checkpoint == nil ? nil : state.step) : nil
        try broadcastFromRoot(model.parameters)
        if checkpoint != nil {
            try broadcastFromRoot(optimizer.m)
            try broadcastFromRoot(optimizer.v)
            try optimizer.startingWeights.map(broadcastFromRoot)
        } else {
            optimizer.anchor(at: model.parameters)
        }
    }

    private static func checkCompatible(_ saved: TrainerState, with now: TrainerState, path: String) throws {
        let fields: [(String, String, String)] = [
            ("seed", "\(saved.seed)", "\(now.seed)"),
            ("global batch size", "\(saved.globalBatchSize)", "\(now.globalBatchSize)"),
            ("training examples", "\(saved.trainExamples)", "\(now.trainExamples)"),
            ("total steps", "\(saved.totalSteps)", "\(now.totalSteps)"),
            ("task", saved.task, now.task),
            ("labels", saved.labels.joined(separator: ","), now.labels.joined(separator: ",")),
            ("--layer-lr-decay", "\(saved.layerLearningRateDecay ?? 1)", "\(now.layerLearningRateDecay ?? 1)"),
            ("the validation split", saved.validationSplit ?? "none", now.validationSplit ?? "none"),
            ("--weight-decay-toward", (saved.weightDecayTarget ?? .zero).rawValue, (now.weightDecayTarget ?? .zero).rawValue),
            ("--group-by-length", "\(saved.groupByLength ?? false)", "\(now.groupByLength ?? false)"),
            ("--mixout", "\(saved.mixout ?? 0)", "\(now.mixout ?? 0)"),
        ]
        if let (field, checkpoint, current) = fields.first(where: { $0.1 != $0.2 }) {
            throw TrainingError.resumeMismatch(path: path, field: field, checkpoint: checkpoint, now: current)
        }
    }

    private var backend: Backend { model.backend }

    /// Rank 0's copy of `buffer` (P floats in backend memory) on every rank.
    private func broadcastFromRoot(_ buffer: UnsafeMutablePointer<Float>) throws {
        guard communicator.worldSize > 1 else { return }
        let count = model.parameterCount
        try host.withUnsafeMutableBufferPointer { staging in
            backend.download(staging.baseAddress!, from: buffer, count: count)
            try communicator.broadcast(staging.baseAddress!, bytes: count * MemoryLayout<Float>.size, root: 0)
            backend.upload(buffer, from: staging.baseAddress!, count: count)
        }
    }

    // MARK: The loop

    public func run() throws -> TrainingSummary {
        var losses: [Float] = []
        var finalMetrics: [String: Double]?
        let startStep = state.step
        let started = Date()
        var window = LogWindow()
        if patienceExhausted {
            log?.say("this run stopped early at step \(state.step) (--early-stopping-patience): \(settings.metricForBest) "
                + "had not improved for \(state.evalsWithoutImprovement ?? 0) evaluations; nothing left to train")
            return TrainingSummary(steps: state.step, losses: [], finalMetrics: nil, stoppedBy: nil)
        }
        log?.say(startBanner())
        try checkParametersIfAsked()
        var order = schedule.order(epoch: schedule.epoch(ofStep: state.step))
        var orderEpoch = schedule.epoch(ofStep: state.step)
        while state.step < settings.totalSteps {
            let step = state.step
            let epoch = schedule.epoch(ofStep: step)
            if epoch != orderEpoch { order = schedule.order(epoch: epoch); orderEpoch = epoch }
            let batch = schedule.globalBatch(step: step, order: order)
            let logging = (step + 1) % settings.logEvery == 0 || step + 1 == settings.totalSteps
            let outcome = try trainStep(step: step, batch: batch,
                                        layerNorms: logging && settings.logLayerGradientNorms)
            state.step += 1
            state.epoch = schedule.epoch(ofStep: state.step)
            losses.append(outcome.loss)
            if outcome.applied {
                state.badStepsInARow = 0
            } else {
                state.badStepsInARow += 1
                log?.warn("step \(state.step): loss \(outcome.loss), gradient norm \(outcome.gradientNorm); "
                    + "skipped the update (\(state.badStepsInARow) in a row)")
                if state.badStepsInARow >= settings.maxBadSteps {
                    throw TrainingError.tooManyBadSteps(step: state.step, count: state.badStepsInARow)
                }
            }
            window.add(outcome, examples: batch.count,
                       tokens: batch.reduce(0) { $0 + train.examples[$1].inputIds.count },
                       paddedTokens: paddedTokens(of: batch))
            let last = state.step == settings.totalSteps
            if state.step % settings.logEvery == 0 || last || outcome.stopSignal != nil {
                try logTraining(window, last: outcome, eta: Date().timeIntervalSince(started)
                    / Double(state.step - startStep) * Double(settings.totalSteps - state.step))
                window = LogWindow()
            }
            if validation != nil, last || settings.evalEvery.map({ state.step % $0 == 0 }) == true {
                finalMetrics = try evaluateAndRecord()
            }
            let stopsEarly = !last && patienceExhausted
            if let signal = outcome.stopSignal {
                try saveCheckpoint()
                log?.say("stopped by \(StopSignal.name(signal)) after step \(state.step); "
                    + "the checkpoint is written, and --resume continues from it")
                return TrainingSummary(steps: state.step, losses: losses, finalMetrics: finalMetrics, stoppedBy: signal)
            }
            if last || stopsEarly || settings.saveEvery.map({ state.step % $0 == 0 }) == true {
                try checkParametersIfAsked()
                try saveCheckpoint()
            }
            if stopsEarly {
                log?.say(earlyStopLine())
                return TrainingSummary(steps: state.step, losses: losses, finalMetrics: finalMetrics, stoppedBy: nil)
            }
        }
        return TrainingSummary(steps: state.step, losses: losses, finalMetrics: finalMetrics, stoppedBy: nil)
    }

    /// The steps since the last log line, which that line averages.
    private struct LogWindow {
        var lossSum = 0.0, steps = 0, examples = 0, tokens = 0, paddedTokens = 0
        var computeSeconds = 0.0, allreduceSeconds = 0.0, exposedSeconds = 0.0
        let since = Date()

        mutating func add(_ outcome: StepOutcome, examples: Int, tokens: Int, paddedTokens: Int) {
            lossSum += Double(outcome.loss)
            steps += 1
            self.examples += examples
            self.tokens += tokens
            self.paddedTokens += paddedTokens
            computeSeconds += outcome.computeSeconds
            allreduceSeconds += outcome.allreduceSeconds
            exposedSeconds += outcome.exposedSeconds
        }

        func perStep(_ total: Double) -> Double { total / Double(steps) }
    }

    struct StepOutcome {
        var loss: Float
        var gradientNorm: Float
        var learningRate: Float
        var applied: Bool
        var stopSignal: Int32?
        var layerGradientNorms: [String: Double]?
        /// This rank's forward and backward passes.
        var computeSeconds: Double
        /// The gradient allreduces, including the wait for the slowest rank.
        var allreduceSeconds: Double
        /// What the step waited for communication after backward: the part not hidden behind it.
        var exposedSeconds: Double
    }

    private func trainStep(step: Int, batch: [Int], layerNorms: Bool) throws -> StepOutcome {
        let shard = shardRange(count: batch.count, rank: communicator.rank, worldSize: communicator.worldSize)
        let dropout = DropoutSettings(hidden: settings.dropout.hidden, attention: settings.dropout.attention,
                                      classifier: settings.dropout.classifier, seed: settings.seed, step: UInt64(step))
        let modelType = model.layout.config.modelType, pad = model.layout.config.padTokenId
        let computeStarted = Date()
        mixout?.mix(parameters: model.parameters, seed: settings.seed, step: step)
        model.zeroGradients()
        var lossSum = 0.0
        let micros = chunks(of: shard, size: settings.microBatchSize)
        for (index, micro) in micros.enumerated() {
            let indices = Array(batch[micro])
            // The position in the global batch keys the dropout masks, so they do not depend on
            // how the batch is split over ranks and micro-batches.
            let encoderBatch = train.batch(indices, exampleIndices: micro.map { Int32($0) }, modelType: modelType,
                                           padTokenId: pad)
            model.forward(encoderBatch, dropout: dropout)
            // Scaled by 1 / global batch here, so that averaging takes no pass of its own.
            lossSum += model.loss(train.targets(indices), gradScale: 1 / Float(batch.count)).reduce(0.0) { $0 + Double($1) }
            // Only the last micro-batch completes a bucket; the earlier ones still add to all of them.
            if let onSpanComplete = exchange.onSpanComplete, index == micros.count - 1 {
                model.backward(completed: onSpanComplete)
            } else {
                model.backward()
            }
        }
        // [loss sum, stop signal]: the signal is summed so that a signal on any rank stops all.
        var shared: [Double] = [lossSum, Double(StopSignal.received ?? 0)]
        let backwardEnded = Date()
        let allreduceSeconds = try exchange.finish()
        // The mask is the same on every rank, so it may apply to the sum as well as to each part.
        mixout?.unmix(parameters: model.parameters, gradients: model.gradients, seed: settings.seed, step: step)
        try communicator.allreduceSum(&shared, count: shared.count)
        let exposedSeconds = Date().timeIntervalSince(backwardEnded)
        let computeSeconds = backwardEnded.timeIntervalSince(computeStarted)
        let loss = Float(shared[0] / Double(batch.count))
        let layerGradientNorms = layerNorms ? self.layerGradientNorms() : nil
        let clip = GradientClip(model.gradients, count: model.parameterCount, maxNorm: settings.maxGradientNorm,
                                backend: backend)
        let norm = clip.norm
        let learningRate = learningRates.learningRate(atStep: step)
        let applied = loss.isFinite && norm.isFinite
        if applied {
            optimizer.update(parameters: model.parameters, gradients: model.gradients, learningRate: learningRate,
                             gradientScale: clip.scale)
            state.optimizerStep = optimizer.step
        }
        let signal = shared[1] > 0 ? StopSignal.received ?? 0 : nil
        return StepOutcome(loss: loss, gradientNorm: norm, learningRate: learningRate, applied: applied,
                           stopSignal: signal, layerGradientNorms: layerGradientNorms, computeSeconds: computeSeconds,
                           allreduceSeconds: allreduceSeconds, exposedSeconds: exposedSeconds)
    }

    /// The positions every rank's micro-batches of `batch` compute, padding included: each is
    /// padded to its longest member. Every rank knows every shard, so rank 0 counts them all.
    private func paddedTokens(of batch: [Int]) -> Int {
        (0..<communicator.worldSize).reduce(0) { total, rank in
            chunks(of: shardRange(count: batch.count, rank: rank, worldSize: communicator.worldSize),
                   size: settings.microBatchSize).reduce(total) { sum, micro in
                sum + micro.count * batch[micro].map { train.examples[$0].inputIds.count }.max()!
            }
        }
    }

    /// The averaged gradient's L2 norm per group of the parameter table: "embeddings",
    /// "layer_<i>" and "head" (pooler and classifier).
    private func layerGradientNorms() -> [String: Double] {
        var sums: [String: Double] = [:]
        for spec in model.table.specs {
            let group = spec.layer.map { "layer_\($0)" }
                ?? (spec.name.hasPrefix("embeddings.") || spec.name.hasPrefix("encoder.") ? "embeddings" : "head")
            sums[group, default: 0] += backend.sumOfSquares(model.gradients + spec.offset, count: spec.count)
        }
        return sums.mapValues { $0.squareRoot() }
    }

    // MARK: Rank 0's duties

    private func startBanner() -> String {
        let table = model.table
        let steps = state.step < settings.totalSteps ? "steps \(state.step + 1)-\(settings.totalSteps)"
            : "all \(settings.totalSteps) steps already done, nothing left to train"
        return "training: \(train.count) examples, \(schedule.stepsPerEpoch) steps per epoch, "
            + "\(communicator.worldSize) rank(s), global batch \(settings.globalBatchSize); \(steps); "
            + "weight decay on \(table.decayingCount) parameters, none on \(table.totalCount - table.decayingCount)"
    }

    /// The log line and metrics.jsonl record of `window`; the gradient norm, the layer norms and the
    /// learning rate are those of its `last` step.
    private func logTraining(_ window: LogWindow, last: StepOutcome, eta: Double) throws {
        guard let log else { return }
        let epoch = Double(state.step) / Double(schedule.stepsPerEpoch)
        let seconds = Date().timeIntervalSince(window.since)
        let loss = window.perStep(window.lossSum)
        let examplesPerSecond = Double(window.examples) / seconds, tokensPerSecond = Double(window.tokens) / seconds
        let padding = 1 - Double(window.tokens) / Double(window.paddedTokens)
        log.say(String(format: "step %d/%d  epoch %.2f  loss %.4f  lr %.3e  grad_norm %.3f  %.1f ex/s  %.0f tok/s  padding %.0f%%  ETA %@",
                       state.step, settings.totalSteps, epoch, loss, last.learningRate, last.gradientNorm,
                       examplesPerSecond, tokensPerSecond, padding * 100, formatDuration(eta)))
        var record: [String: Any] = ["type": "train", "step": state.step, "epoch": epoch, "loss": loss,
                                     "lr": Double(last.learningRate), "grad_norm": Double(last.gradientNorm),
                                     "examples_per_s": examplesPerSecond, "tokens_per_s": tokensPerSecond,
                                     "padding": padding,
                                     "compute_s": window.perStep(window.computeSeconds),
                                     "allreduce_s": window.perStep(window.allreduceSeconds),
                                     "allreduce_exposed_s": window.perStep(window.exposedSeconds)]
        if let layerGradientNorms = last.layerGradientNorms {
            record["layer_grad_norms"] = layerGradientNorms.mapValues { $0.isFinite ? $0 as Any : NSNull() }
            let text = layerGradientNorms.sorted { $0.key < $1.key }.map { String(format: "%@ %.3g", $0.key, $0.value) }
            log.say("  layer gradient norms: " + text.joined(separator: "  "))
        }
        try log.record(record)
        log.progress(step: state.step, total: settings.totalSteps, suffix: "ETA \(formatDuration(eta))")
    }

    /// Whether --early-stopping-patience evaluations in a row have failed to improve the metric.
    private var patienceExhausted: Bool {
        settings.earlyStoppingPatience.map { (state.evalsWithoutImprovement ?? 0) >= $0 } ?? false
    }

    private func earlyStopLine() -> String {
        let best = state.bestMetric.map { String(format: "%.4f", $0) } ?? "nan"
        let bestStep = state.bestStep.map { " at step \($0)" } ?? ""
        // The best evaluation has a checkpoint only if it fell on a save (--save-every).
        let bestCheckpoint = state.bestStep.flatMap { step in store?.complete().first { $0.step == step }?.url }
        let saved = bestCheckpoint.map { "; the best checkpoint is \($0.path)" } ?? ""
        return "early stopping: \(settings.metricForBest) has not improved on \(best)\(bestStep) by more than "
            + "\(settings.earlyStoppingThreshold) for \(state.evalsWithoutImprovement ?? 0) evaluations; "
            + "stopped after step \(state.step) of \(settings.totalSteps)" + saved
    }

    /// Evaluates, then updates the best metric and, as the HF Trainer's EarlyStoppingCallback
    /// counts it, the evaluations without an improvement beyond the threshold (a NaN metric is
    /// none). Every rank holds the same metrics, so every rank takes the same decisions.
    private func evaluateAndRecord() throws -> [String: Double] {
        guard let validation else { return [:] }
        let metrics = try evaluate(validation)
        let value = metrics[settings.metricForBest] ?? .nan
        let improvement = state.bestMetric.map { settings.minimisesMetric ? $0 - value : value - $0 }
        if value.isFinite, improvement.map({ $0 > 0 }) ?? true {
            state.bestMetric = value
            state.bestStep = state.step
        }
        let resetsPatience = value.isFinite && (improvement.map { $0 > settings.earlyStoppingThreshold } ?? true)
        state.evalsWithoutImprovement = resetsPatience ? 0 : (state.evalsWithoutImprovement ?? 0) + 1
        if let log {
            let text = metrics.sorted { $0.key < $1.key }.map { String(format: "%@ %.4f", $0.key, $0.value) }
            log.say("eval step \(state.step): " + text.joined(separator: "  "))
            try log.record((metrics as [String: Any]).merging(["type": "eval", "step": state.step]) { $1 })
        }
        return metrics
    }

    /// Metrics of `set` under the current parameters, each rank predicting its share.
    public func evaluate(_ set: ExampleSet) throws -> [String: Double] {
        let outputs = try predict(set)
        return evaluationMetrics(outputs: outputs, set: set, numLabels: model.layout.K)
    }

    /// The model's outputs for every example of `set` (B, K), gathered on every rank. Examples are
    /// sorted by length first, so that batches carry little padding.
    public func predict(_ set: ExampleSet) throws -> [Float] {
        try predictOutputs(model: model, set: set, communicator: communicator, batchSize: settings.evalBatchSize)
    }

    private func saveCheckpoint() throws {
        defer { try? communicator.barrier() }
        guard communicator.isRoot, let store else { return }
        state.learningRate = settings.learningRate
        let url = try store.save(model: model, optimizer: optimizer, state: state, extraFiles: settings.extraFiles)
        store.prune(keep: settings.keep, protected: state.bestStep)
        log?.say("saved \(url.path)")
    }

    /// With --check: rank 0's parameter checksum, compared on every rank.
    private func checkParametersIfAsked() throws {
        guard settings.checkParameters else { return }
        host.withUnsafeMutableBufferPointer { backend.download($0.baseAddress!, from: model.parameters, count: model.parameterCount) }
        var mine = host.withUnsafeBytes { fnv1a($0) }
        var root = mine
        try withUnsafeMutableBytes(of: &root) { try communicator.broadcast($0.baseAddress!, bytes: 8, root: 0) }
        var differing: [Double] = [root == mine ? 0 : 1]
        try communicator.allreduceSum(&differing, count: 1)
        if differing[0] > 0 {
            throw TrainingError.parametersDiverged(step: state.step, ranks: Int(differing[0]), worldSize: communicator.worldSize)
        }
        mine = root
        log?.say(String(format: "check: step %d, parameters identical on all %d rank(s) (checksum %016llx)",
                        state.step, communicator.worldSize, mine))
    }
}

/// FNV-1a (64-bit) of `bytes`: the parameter checksum over their bits, equal only when every
/// bit is, and Mixout's site of a weight's name.
func fnv1a<Bytes: Sequence>(_ bytes: Bytes) -> UInt64 where Bytes.Element == UInt8 {
    bytes.reduce(0xCBF2_9CE4_8422_2325) { ($0 ^ UInt64($1)) &* 0x0000_0100_0000_01B3 }
}

/// The model's outputs (B, K) for every example of `set`, each rank computing a contiguous share
/// of the examples sorted by length, gathered with one allreduce.
public func predictOutputs(model: EncoderModel, set: ExampleSet, communicator: Communicator,
                           batchSize: Int) throws -> [Float] {
    let K = model.layout.K
    let byLength = set.examples.indices.sorted { set.examples[$0].inputIds.count < set.examples[$1].inputIds.count }
    let share = shardRange(count: set.count, rank: communicator.rank, worldSize: communicator.worldSize)
    var outputs = [Float](repeating: 0, count: set.count * K)  // (B, K)
    for piece in chunks(of: share, size: batchSize) {
        let indices = Array(byLength[piece])
        model.forward(set.batch(indices, exampleIndices: indices.map { Int32($0) },
                                modelType: model.layout.config.modelType, padTokenId: model.layout.config.padTokenId),
                      dropout: nil)
        let logits = model.logits()
        for (b, index) in indices.enumerated() {
            for k in 0..<K { outputs[index * K + k] = logits[b * K + k] }
        }
    }
    try communicator.allreduceSum(&outputs, count: outputs.count)
    return outputs
}

/// Regression: rmse, mae, pearson, spearman; classification: accuracy, f1 (binary), macro_f1,
/// mcc. Both also report the mean loss, as the HF Trainer's eval_loss.
public func evaluationMetrics(outputs: [Float], set: ExampleSet, numLabels K: Int) -> [String: Double] {
    switch set.task {
    case .regression:
        let targets = set.examples.map(\.target)
        var metrics = regressionMetrics(predictions: outputs, targets: targets)
        metrics["loss"] = zip(outputs, targets).reduce(0.0) { $0 + pow(Double($1.0 - $1.1), 2) } / Double(set.count)
        return metrics
    case .classification:
        let labels = set.examples.map { Int($0.target) }
        var predicted: [Int] = []
        var loss = 0.0
        for (b, label) in labels.enumerated() {
            let row = outputs[(b * K)..<((b + 1) * K)].map(Double.init)
            let top = row.max() ?? 0
            let logSum = top + log(row.reduce(0) { $0 + exp($1 - top) })
            loss += logSum - row[label]
            predicted.append(row.firstIndex(of: top) ?? 0)
        }
        var metrics = classificationMetrics(predictions: predicted, labels: labels, numLabels: K)
        metrics["loss"] = loss / Double(set.count)
        return metrics
    }
}
