// `dp-train train`: options into a TrainingConfiguration, then the right communicator.
//
//   dp-train train --ranks 1 --model DIR --train train.csv --validation-fraction 0.1 --output run
//   mpirun -np 4 dp-train train --model DIR --train train.csv ...
//   dp-train train --ranks 4 ...       (starts itself under mpirun)
//   srun --mpi=pmix dp-train train ... (inside a Slurm allocation)

import ArgumentParser
import DPData
import DPDistributed
import DPModels
import DPTokenizers
import DPTrain
import Foundation

extension Task: ExpressibleByArgument {}
extension Pooling: ExpressibleByArgument {}
extension WeightDecayTarget: ExpressibleByArgument {}

/// The data options that train, evaluate and predict share.
struct DataColumnOptions: ParsableArguments {
    @Option(name: .long, help: "The column holding the text.") var textColumn = "text"
    @Option(name: .long, help: "A second text column, for sentence pairs.") var textPairColumn: String?
    @Option(name: .long, help: "The column holding the target or class label.") var labelColumn = "label"
    @Option(name: .long, help: "Tokens per example, special tokens included; longer texts are truncated.")
    var maxLength = 128

    var columns: DataColumns { DataColumns(text: textColumn, textPair: textPairColumn, label: labelColumn) }

    func validate() throws {
        guard maxLength >= 2 else { throw ValidationError("--max-length must be at least 2, got \(maxLength)") }
    }
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fine-tune an encoder for regression or classification, data-parallel over MPI ranks.",
        discussion: """
        Every option can also come from --config FILE (YAML or JSON, keys as the long option names); \
        options on the command line override the file.
        """)

    // Model and data
    @Option(name: .long, help: "A Hugging Face checkpoint folder (config.json, model.safetensors, tokenizer.json).")
    var model: String
    @Option(name: .long, help: "Training data: CSV, TSV or JSONL with named columns.") var train: String
    @Option(name: .long, help: "Validation data, in the same form.") var validation: String?
    @Option(name: .long, help: "Hold out this fraction of --train for validation (a fixed, seeded split).")
    var validationFraction: Double?
    @Option(name: .long, help: "Stratified k-fold cross-validation over --train: the number of folds (with --fold).")
    var folds: Int?
    @Option(name: .long, help: "The fold (0-based) of --folds held out for validation.") var fold: Int?
    @Option(name: .long, help: "Seed of the --validation-fraction or --folds split.") var splitSeed: UInt64 = 0
    @OptionGroup var data: DataColumnOptions
    @Option(name: .long, help: "regression or classification; inferred from the label column when absent.")
    var task: Task?
    @Option(name: .long, help: "Head pooling: pooler, first_token, mean, attention, weighted_layers or roberta_head; from config.json when absent.")
    var pooling: Pooling?
    @Option(name: .long, help: "How many of the last hidden states --pooling weighted_layers mixes (default 4).")
    var pooledLayers: Int?

    // Recipe
    @Option(name: .long, help: "Global batch size, split over the ranks.") var batchSize = 16
    @Flag(name: .long, help: "Batch examples of similar length together, as the HF Trainer's group_by_length: less padding, and ranks that finish together.")
    var groupByLength = false
    @Option(name: .long, help: "Examples per forward/backward pass on one rank (same result, less memory).")
    var microBatchSize: Int?
    @Option(name: .long, help: "Passes over the training data.") var epochs = 3
    @Option(name: .long, help: "Optimizer steps; overrides --epochs.") var maxSteps: Int?
    @Option(name: .long, help: "Peak learning rate.") var lr: Float = 2e-5
    @Option(name: .long, help: "Fraction of the steps spent warming the rate up from 0.") var warmupRatio = 0.1
    @Option(name: .long, help: "Decoupled weight decay (never on biases or LayerNorm). Default 0.01; RoBERTa 0.1; ALBERT 0.")
    var weightDecay: Float?
    @Option(name: .long, help: "What the decay pulls toward: zero (torch AdamW) or pretrained, the weights training started from (Zhang et al.'s pretrained weight decay).")
    var weightDecayToward: WeightDecayTarget = .zero
    @Option(name: .long, help: "Dropout for hidden states, attention and the head. Default: config.json's; ALBERT 0.")
    var dropout: Float?
    @Option(name: .long, help: "Clip the global gradient norm to this; 0 turns clipping off. Default 1; RoBERTa 0.")
    var maxGradNorm: Float?
    @Option(name: .long, help: "true: torch.optim.AdamW; false: BERTAdam (no bias correction).")
    var adamBiasCorrection = true
    @Option(name: .long, help: "Mixout (Lee et al. 2020): the chance that each input column of each linear weight is replaced by its starting value at a step; 0 is off. Dropout then defaults to 0.")
    var mixout: Float = 0
    @Option(name: .long, help: "Adam's epsilon.") var adamEps: Float = 1e-6
    @Option(name: .long, help: "Adam's betas, as b1,b2.") var adamBetas = "0.9,0.999"
    @Option(name: .long, help: "Re-initialise the pooler and this many top layers before training (Zhang et al. 2020; BERT and RoBERTa).")
    var reinitLayers = 0
    @Option(name: .long, help: "Layer-wise learning-rate decay: the head gets --lr, each layer below this times the rate above it, the embeddings the least; 1 is off.")
    var layerLrDecay: Float = 1

    // Run control
    @Option(name: .long, help: "Seeds data order, dropout and any fresh head.") var seed: UInt64 = 42
    @Option(name: .long, help: "Log every N steps.") var logEvery = 10
    @Flag(name: .long, help: "Also log the gradient norm of each layer (before clipping).")
    var logLayerGradNorms = false
    @Option(name: .long, help: "Evaluate every N steps (and always at the end).") var evalEvery: Int?
    @Option(name: .long, help: "Evaluate this many times an epoch, evenly spaced, as Mosbach et al. do (3); instead of --eval-every.")
    var evalsPerEpoch: Int?
    @Option(name: .long, help: "Examples per evaluation batch on one rank.") var evalBatchSize = 64
    @Option(name: .long, help: "The evaluation metric that picks the best checkpoint (rmse, pearson, accuracy, f1, mcc, ...).")
    var metricForBest: String?
    @Option(name: .long, help: "Stop after this many evaluations in a row without the --metric-for-best improving (the HF Trainer's EarlyStoppingCallback).")
    var earlyStoppingPatience: Int?
    @Option(name: .long, help: "How much --metric-for-best must improve on the best to reset --early-stopping-patience.")
    var earlyStoppingThreshold = 0.0
    @Option(name: .long, help: "Folder for checkpoints and metrics.jsonl.") var output: String?
    @Option(name: .long, help: "Write a checkpoint every N steps (and always at the end).") var saveEvery: Int?
    @Option(name: .long, help: "Keep the newest K checkpoints, plus the best.") var keep = 2
    @Flag(name: .long, help: "Continue from the newest complete checkpoint in --output.") var resume = false
    @Option(name: .long, help: "Ranks; more than 1 without a launcher starts this command under mpirun.")
    var ranks: Int?
    @Option(name: .long, help: "Threads per rank. Default: the cores divided by the ranks on this node.")
    var threads: Int?
    @Option(name: .long, help: "Seconds any collective may take before the job ends with an error; 0 waits forever.")
    var collectiveTimeout: Double = 600
    @Option(name: .long, help: "true: sum each bucket of gradients (head, block, embeddings) while backward goes on, as DDP does; false: one allreduce after backward.")
    var overlapAllreduce = true
    @Flag(name: .long, help: "Compare a parameter checksum across ranks at the start, at each save and at the end.")
    var check = false
    @OptionGroup var backend: BackendOption
    @Option(name: .long, help: "A YAML or JSON file of options.") var config: String?

    var betas: (Float, Float)? {
        let parts = adamBetas.split(separator: ",").compactMap { Float($0.trimmingCharacters(in: .whitespaces)) }
        return parts.count == 2 ? (parts[0], parts[1]) : nil
    }

    func validate() throws {
        func positive(_ value: Int?, _ name: String) throws {
            if let value, value < 1 { throw ValidationError("--\(name) must be at least 1, got \(value)") }
        }
        try positive(batchSize, "batch-size")
        try positive(microBatchSize, "micro-batch-size")
        try positive(maxSteps, "max-steps")
        try positive(logEvery, "log-every")
        try positive(evalEvery, "eval-every")
        try positive(evalsPerEpoch, "evals-per-epoch")
        if evalEvery != nil, evalsPerEpoch != nil {
            throw ValidationError("--eval-every and --evals-per-epoch exclude each other")
        }
        try positive(evalBatchSize, "eval-batch-size")
        try positive(earlyStoppingPatience, "early-stopping-patience")
        guard earlyStoppingThreshold >= 0 else {
            throw ValidationError("--early-stopping-threshold must be at least 0, got \(earlyStoppingThreshold)")
        }
        try positive(saveEvery, "save-every")
        try positive(keep, "keep")
        try positive(ranks, "ranks")
        try positive(threads, "threads")
        if maxSteps == nil { try positive(epochs, "epochs") }
        guard lr > 0, lr.isFinite else { throw ValidationError("--lr must be a positive number, got \(lr)") }
        guard (0...1).contains(warmupRatio) else { throw ValidationError("--warmup-ratio must be in [0, 1], got \(warmupRatio)") }
        if let weightDecay, !(weightDecay >= 0) { throw ValidationError("--weight-decay must be at least 0, got \(weightDecay)") }
        if let dropout, !(0..<1).contains(dropout) { throw ValidationError("--dropout must be in [0, 1), got \(dropout)") }
        if let maxGradNorm, !(maxGradNorm >= 0) { throw ValidationError("--max-grad-norm must be at least 0, got \(maxGradNorm)") }
        guard collectiveTimeout >= 0 else {
            throw ValidationError("--collective-timeout must be at least 0, got \(collectiveTimeout)")
        }
        guard reinitLayers >= 0 else { throw ValidationError("--reinit-layers must be at least 0, got \(reinitLayers)") }
        guard layerLrDecay > 0, layerLrDecay <= 1 else {
            throw ValidationError("--layer-lr-decay must be in (0, 1], got \(layerLrDecay)")
        }
        guard mixout >= 0, mixout < 1 else { throw ValidationError("--mixout must be in [0, 1), got \(mixout)") }
        guard adamEps > 0 else { throw ValidationError("--adam-eps must be positive, got \(adamEps)") }
        guard let betas, (0..<1).contains(betas.0), (0..<1).contains(betas.1) else {
            throw ValidationError("--adam-betas must be two numbers in [0, 1) as b1,b2, got \(adamBetas)")
        }
        if let validationFraction, !(validationFraction > 0 && validationFraction < 1) {
            throw ValidationError("--validation-fraction must be between 0 and 1, got \(validationFraction)")
        }
        let validationSources = [("--validation", validation != nil), ("--validation-fraction", validationFraction != nil),
                                 ("--folds", folds != nil || fold != nil)].filter(\.1).map(\.0)
        if validationSources.count > 1 {
            throw ValidationError("\(validationSources.joined(separator: " and ")) exclude each other")
        }
        switch (folds, fold) {
        case (nil, nil): break
        case let (folds?, fold?):
            guard folds >= 2 else { throw ValidationError("--folds must be at least 2, got \(folds)") }
            guard (0..<folds).contains(fold) else {
                throw ValidationError("--fold must be in 0...\(folds - 1) with --folds \(folds), got \(fold)")
            }
        default:
            throw ValidationError("--folds and --fold go together: the number of folds, and the one held out")
        }
        if resume, output == nil { throw ValidationError("--resume needs --output, the folder of the checkpoints") }
        if let metricForBest, validationSources.isEmpty {
            throw ValidationError("--metric-for-best \(metricForBest) needs --validation, --validation-fraction or --folds")
        }
        if let earlyStoppingPatience, validationSources.isEmpty {
            throw ValidationError("--early-stopping-patience \(earlyStoppingPatience) needs --validation, --validation-fraction or --folds")
        }
        for (name, path) in [("model", model), ("train", train), ("validation", validation)] {
            if let path, !FileManager.default.fileExists(atPath: path) {
                throw ValidationError("--\(name) \(path): no such file or folder")
            }
        }
    }

    func configuration(threads: Int) -> TrainingConfiguration {
        var c = TrainingConfiguration(model: URL(fileURLWithPath: model), train: URL(fileURLWithPath: train),
                                      columns: data.columns)
        c.validation = validation.map { URL(fileURLWithPath: $0) }
        c.validationFraction = validationFraction
        c.splitSeed = splitSeed
        c.crossValidation = folds.flatMap { folds in fold.map { (folds, $0) } }
        c.task = task
        c.pooling = pooling
        c.pooledLayers = pooledLayers
        c.maxLength = data.maxLength
        c.batchSize = batchSize
        c.groupByLength = groupByLength
        c.microBatchSize = microBatchSize
        c.epochs = epochs
        c.maxSteps = maxSteps
        c.learningRate = lr
        c.warmupRatio = warmupRatio
        c.weightDecay = weightDecay
        c.weightDecayTarget = weightDecayToward
        c.dropout = dropout
        c.maxGradientNorm = maxGradNorm
        c.biasCorrection = adamBiasCorrection
        c.reinitLayers = reinitLayers
        c.layerLearningRateDecay = layerLrDecay
        c.adamEpsilon = adamEps
        c.mixout = mixout
        c.adamBetas = betas ?? (0.9, 0.999)
        c.seed = seed
        c.logEvery = logEvery
        c.evalEvery = evalEvery
        c.evalsPerEpoch = evalsPerEpoch
        c.evalBatchSize = evalBatchSize
        c.metricForBest = metricForBest
        c.earlyStoppingPatience = earlyStoppingPatience
        c.earlyStoppingThreshold = earlyStoppingThreshold
        c.output = output.map { URL(fileURLWithPath: $0) }
        c.saveEvery = saveEvery
        c.keep = keep
        c.resume = resume
        c.threads = threads
        c.check = check
        c.logLayerGradientNorms = logLayerGradNorms
        c.overlapAllreduce = overlapAllreduce
        c.backend = backend.backend
        c.precision = backend.precision
        return c
    }

    func run() throws {
        let communicator: Communicator
        switch try Launch.current(requestedRanks: ranks) {
        case .singleProcess:
            communicator = SingleProcessCommunicator()
        case .mpi:
            communicator = try MPICommunicator(collectiveTimeout: collectiveTimeout > 0 ? collectiveTimeout : nil)
            if let ranks, ranks != communicator.worldSize {
                throw ValidationError("--ranks \(ranks), but the launcher started \(communicator.worldSize) ranks")
            }
        case .relaunch(let executable, let arguments):
            try Launch.exec(executable, arguments)
        }
        StopSignal.install()
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let configuration = configuration(threads: threads ?? max(1, cores / communicator.localSize))
        do {
            let summary = try runTraining(configuration, communicator: communicator) { print($0) }
            communicator.finish()
            // EX_TEMPFAIL tells a job script that the run stopped early and can be resumed.
            if summary.stoppedBy != nil { throw ExitCode(75) }
        } catch let error as ExitCode {
            throw error
        } catch {
            guard communicator.worldSize > 1 else { throw error }
            // One rank's error must end all of them, or the others wait in a collective forever.
            // Input errors are the same on every rank, so rank 0 alone reports those.
            let sameOnEveryRank = error is DataError || error is CheckpointError || error is TokenizerError
            if communicator.isRoot || !sameOnEveryRank {
                let rank = communicator.isRoot ? "" : "rank \(communicator.rank): "
                FileHandle.standardError.write(Data("\(rank)Error: \(error)\n".utf8))
            }
            communicator.abort(exitCode: 1)
        }
    }
}
