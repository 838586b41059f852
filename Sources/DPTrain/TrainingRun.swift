// `dp-train train` as a library call: options in, a finished (or cleanly stopped) run out.
// It resolves the per-model recipe defaults, loads and tokenises the data on every rank, builds
// the model (from --model, or from the newest checkpoint with --resume) and hands over to the
// DataParallelTrainer.

import DPBackend
import DPData
import DPDistributed
import DPModels
import DPTokenizers
import Foundation

public struct TrainingConfiguration: Sendable {
    public var model: URL
    public var train: URL
    public var validation: URL?
    public var validationFraction: Double?
    /// Stratified k-fold cross-validation: fold `fold` (0-based) of `folds` is the validation set.
    public var crossValidation: (folds: Int, fold: Int)?
    /// Seeds the --validation-fraction and --folds splits only, so that seed sweeps share one split.
    public var splitSeed: UInt64 = 0
    public var columns: DataColumns
    /// Inferred from the label column when nil.
    public var task: Task?
    /// From config.json (dp_train_pooling, else what transformers builds) when nil.
    public var pooling: Pooling?
    /// The weighted_layers head's depth; config.json's dp_train_pooled_layers, else 4, when nil.
    public var pooledLayers: Int?
    public var maxLength = 128
    public var batchSize = 16
    /// Batches of examples of similar length, as the HF Trainer's group_by_length.
    public var groupByLength = false
    public var microBatchSize: Int?
    public var epochs = 3
    public var maxSteps: Int?
    public var learningRate: Float = 2e-5
    public var warmupRatio = 0.1
    /// Per-model defaults when nil: 0.01; RoBERTa 0.1; ALBERT 0.
    public var weightDecay: Float?
    /// Per-model defaults when nil: config.json's dropout; ALBERT 0.
    public var dropout: Float?
    /// Per-model defaults when nil: 1; RoBERTa 0 (no clipping).
    public var maxGradientNorm: Float?
    public var biasCorrection = true
    /// Zhang et al.'s re-initialisation of the pooler and this many top layers; 0 keeps them.
    public var reinitLayers = 0
    /// Each layer's learning rate is this times the one above it; 1 is one rate for all.
    public var layerLearningRateDecay: Float = 1
    public var adamEpsilon: Float = 1e-6
    public var weightDecayTarget = WeightDecayTarget.zero
    /// Mixout's probability; 0 is off. With it, dropout defaults to 0, as Lee et al. train.
    public var mixout: Float = 0
    public var adamBetas: (Float, Float) = (0.9, 0.999)
    public var seed: UInt64 = 42
    public var logEvery = 10
    public var evalEvery: Int?
    /// Instead of evalEvery: this many evaluations an epoch, every floor(steps per epoch / N) steps.
    public var evalsPerEpoch: Int?
    public var evalBatchSize = 64
    public var metricForBest: String?
    /// Evaluations without improvement before training stops; nil never stops early.
    public var earlyStoppingPatience: Int?
    /// How much the metric must improve on the best to count as an improvement.
    public var earlyStoppingThreshold = 0.0
    public var output: URL?
    public var saveEvery: Int?
    public var keep = 2
    public var resume = false
    public var threads = 1
    public var check = false
    public var logLayerGradientNorms = false
    public var overlapAllreduce = true
    public var backend: BackendKind = .cpu
    public var precision: Precision = .fp32

    public init(model: URL, train: URL, columns: DataColumns) {
        self.model = model
        self.train = train
        self.columns = columns
    }
}

/// The recipe's per-model defaults (../shared/docs/RECIPES.md): RoBERTa decays by 0.1 and does
/// not clip; ALBERT trains without dropout or weight decay.
public struct ResolvedRecipe: Sendable {
    public var weightDecay: Float
    public var maxGradientNorm: Float
    public var dropout: DropoutRates
    /// One line per default that came from the model type rather than the user.
    public var notes: [String]

    public init(configuration: TrainingConfiguration, model: ModelConfig) {
        var notes: [String] = []
        let type = model.modelType.rawValue
        switch configuration.weightDecay {
        case let given?: weightDecay = given
        case nil:
            weightDecay = model.modelType == .roberta ? 0.1 : model.modelType == .albert ? 0 : 0.01
            notes.append("weight decay \(weightDecay) (\(type) default)")
        }
        switch configuration.maxGradientNorm {
        case let given?: maxGradientNorm = given
        case nil:
            maxGradientNorm = model.modelType == .roberta ? 0 : 1
            notes.append(maxGradientNorm == 0 ? "no gradient clipping (\(type) default)"
                                              : "gradient clipping at \(maxGradientNorm) (\(type) default)")
        }
        switch configuration.dropout {
        case let given?: dropout = DropoutRates(hidden: given, attention: given, classifier: given)
        case nil where configuration.mixout > 0:
            dropout = DropoutRates(hidden: 0, attention: 0, classifier: 0)
            notes.append("no dropout (--mixout replaces it)")
        case nil where model.modelType == .albert:
            dropout = DropoutRates(hidden: 0, attention: 0, classifier: 0)
            notes.append("no dropout (albert default)")
        case nil:
            dropout = DropoutRates(hidden: model.hiddenDropoutProb, attention: model.attentionProbsDropoutProb,
                                   classifier: model.classifierDropoutProb ?? model.hiddenDropoutProb)
            notes.append("dropout \(dropout.hidden) hidden, \(dropout.attention) attention (config.json)")
        }
        self.notes = notes
    }
}

/// Tokenizer and vocabulary files that travel with a checkpoint, so it can be loaded alone.
let tokenizerFileNames = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
                          "vocab.json", "merges.txt", "spiece.model", "sentencepiece.bpe.model"]

public func tokenizerFiles(in folder: URL) -> [URL] {
    tokenizerFileNames.map { folder.appendingPathComponent($0) }
        .filter { FileManager.default.fileExists(atPath: $0.path) }
}

public func runTraining(_ configuration: TrainingConfiguration, communicator: Communicator,
                        say: (String) -> Void) throws -> TrainingSummary {
    let root = communicator.isRoot
    // First, so that a missing GPU or CUDA library stops the run before any data is read.
    let backend = try configuration.backend.make(threads: configuration.threads, localRank: communicator.localRank,
                                                 precision: configuration.precision)
    let store = configuration.output.map(CheckpointStore.init(folder:))
    if root, let output = configuration.output {
        do {
            try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        } catch {
            throw TrainingError.cannotWrite(path: output.path, reason: error.localizedDescription)
        }
    }
    var resumeFrom: URL?
    if configuration.resume, let store {
        resumeFrom = store.complete().last?.url
        if root {
            say(resumeFrom.map { "resuming from \($0.path)" }
                ?? "--resume: no complete checkpoint in \(store.folder.path) yet; starting from the beginning")
        }
    }
    let modelConfig = try CheckpointFolder(directory: configuration.model).config()
    try checkLayerOptions(configuration, model: modelConfig)
    let tokenizer = try Tokenizer(contentsOf: configuration.model)

    // Data: every rank reads and tokenises all of it; it is small next to the model.
    let trainTable = try Table(contentsOf: configuration.train)
    let task: Task
    if let given = configuration.task {
        task = given
    } else {
        let inferred = try inferTask(table: trainTable, labelColumn: configuration.columns.label)
        task = inferred.task
        if root { say("task: \(task.rawValue), inferred because \(inferred.reason); --task overrides it") }
    }
    var trainRows = Array(0..<trainTable.rowCount)
    var validation: (table: Table, rows: [Int])?
    var split: (train: [Int], validation: [Int], description: String)?
    if let url = configuration.validation {
        let table = try Table(contentsOf: url)
        validation = (table, Array(0..<table.rowCount))
    } else if let fraction = configuration.validationFraction {
        let rows = splitRows(count: trainTable.rowCount, validationFraction: fraction, seed: configuration.splitSeed)
        split = (rows.train, rows.validation, "fraction \(fraction), seed \(configuration.splitSeed)")
    } else if let (folds, fold) = configuration.crossValidation {
        let rows = crossValidationSplit(strata: try strata(table: trainTable, labelColumn: configuration.columns.label,
                                                           task: task),
                                        folds: folds, fold: fold, seed: configuration.splitSeed)
        split = (rows.train, rows.validation, "fold \(fold) of \(folds), seed \(configuration.splitSeed)")
    }
    if let split {
        trainRows = split.train
        validation = (trainTable, split.validation)
        if root, let output = configuration.output {
            let json = try JSONSerialization.data(withJSONObject: ["train_rows": split.train,
                                                                   "validation_rows": split.validation,
                                                                   "split": split.description])
            try AtomicFile.save(json, to: output.appendingPathComponent("split.json"))
        }
    }
    let labels = task == .classification
        ? try labelNames(table: trainTable, labelColumn: configuration.columns.label, rows: trainRows) : []
    if task == .classification, labels.count < 2 {
        throw DataError(path: configuration.train.path, column: configuration.columns.label,
                        reason: "classification needs at least 2 distinct labels, found \(labels.count)")
    }
    let train = try loadExamples(table: trainTable, rows: trainRows, columns: configuration.columns, task: task,
                                 labels: labels, tokenizer: tokenizer, maxLength: configuration.maxLength)
    let validationSet = try validation.map {
        try loadExamples(table: $0.table, rows: $0.rows, columns: configuration.columns, task: task, labels: labels,
                         tokenizer: tokenizer, maxLength: configuration.maxLength)
    }
    guard train.count > 0 else {
        throw DataError(path: configuration.train.path, reason: "no training rows")
    }
    let metricForBest = configuration.metricForBest ?? (task == .regression ? "rmse" : "accuracy")
    let metrics = metricNames(task: task, numLabels: train.numLabels)
    guard metrics.contains(metricForBest) else {
        throw TrainingError.unknownMetric(name: metricForBest, task: task.rawValue, known: metrics)
    }

    // Model: the newest checkpoint when resuming, else --model with a fresh head where it lacks one.
    let head = try trainingHead(configuration, model: modelConfig, task: task, numLabels: train.numLabels)
    let (model, report) = try EncoderModel.load(from: resumeFrom ?? configuration.model, head: head, backend: backend,
                                                seed: configuration.seed)
    // A resumed run's checkpoint already holds the re-initialised layers, trained since.
    let reinitialised = resumeFrom == nil
        ? model.reinitialiseTopLayers(configuration.reinitLayers, seed: configuration.seed) : []
    let recipe = ResolvedRecipe(configuration: configuration, model: modelConfig)
    let layerDecay = configuration.layerLearningRateDecay
    let optimizer = AdamWOptimizer(table: model.table, settings: AdamWSettings(
        beta1: configuration.adamBetas.0, beta2: configuration.adamBetas.1, epsilon: configuration.adamEpsilon,
        weightDecay: recipe.weightDecay, biasCorrection: configuration.biasCorrection,
        decayTarget: configuration.weightDecayTarget), backend: backend,
        groups: layerDecay == 1 ? nil : model.layout.layerwiseLearningRateGroups(decay: layerDecay),
        keepsStartingWeights: configuration.mixout > 0)

    let schedule = DataSchedule(exampleCount: train.count, globalBatchSize: configuration.batchSize, seed: configuration.seed)
    var settings = TrainerSettings(totalSteps: configuration.maxSteps ?? configuration.epochs * schedule.stepsPerEpoch,
                                   dropout: recipe.dropout,
                                   metricForBest: metricForBest)
    settings.globalBatchSize = configuration.batchSize
    settings.microBatchSize = configuration.microBatchSize
    settings.learningRate = configuration.learningRate
    settings.warmupRatio = configuration.warmupRatio
    settings.maxGradientNorm = recipe.maxGradientNorm
    settings.layerLearningRateDecay = layerDecay
    settings.validationSplit = split?.description
    settings.groupByLength = configuration.groupByLength
    settings.mixout = configuration.mixout
    settings.earlyStoppingPatience = configuration.earlyStoppingPatience
    settings.earlyStoppingThreshold = configuration.earlyStoppingThreshold
    settings.seed = configuration.seed
    settings.logEvery = configuration.logEvery
    settings.evalEvery = configuration.evalEvery ?? configuration.evalsPerEpoch.map { max(1, schedule.stepsPerEpoch / $0) }
    settings.evalBatchSize = configuration.evalBatchSize
    settings.output = configuration.output
    settings.saveEvery = configuration.saveEvery
    settings.keep = configuration.keep
    settings.checkParameters = configuration.check
    settings.logLayerGradientNorms = configuration.logLayerGradientNorms
    settings.overlapAllreduce = configuration.overlapAllreduce
    settings.extraFiles = tokenizerFiles(in: configuration.model)

    if root {
        say("model: \(modelConfig.modelType.rawValue), \(model.parameterCount) parameters, head \(head.pooling.rawValue) "
            + "\(task.rawValue) with \(head.numLabels) output(s)"
            + (report.initialised.isEmpty || resumeFrom != nil ? "" : "; initialised fresh: \(report.initialised.joined(separator: ", "))"))
        say("data: \(train.count) training and \(validationSet?.count ?? 0) validation examples, max length \(configuration.maxLength)"
            + (task == .classification ? ", labels \(labels.joined(separator: ", "))" : ""))
        say(String(format: "recipe: global batch %d, lr %.2e, warmup %.0f%%, AdamW betas (%g, %g) eps %g, bias correction %@",
                   configuration.batchSize, configuration.learningRate, configuration.warmupRatio * 100,
                   configuration.adamBetas.0, configuration.adamBetas.1, configuration.adamEpsilon,
                   configuration.biasCorrection ? "on" : "off (BERTAdam)")
            + "; " + (recipe.notes.isEmpty ? "no per-model defaults used" : recipe.notes.joined(separator: ", ")))
        if !reinitialised.isEmpty {
            let (first, last) = (modelConfig.numHiddenLayers - configuration.reinitLayers, modelConfig.numHiddenLayers - 1)
            say("re-initialised (--reinit-layers \(configuration.reinitLayers)): "
                + (head.pooling == .pooler ? "the pooler and " : "")
                + (first == last ? "layer \(last)" : "layers \(first)-\(last)") + ", \(reinitialised.count) tensors")
        }
        if layerDecay != 1 {
            let scales = optimizer.groups.map(\.scale)
            say(String(format: "layer-wise lr decay %g: the head at lr, layer %d at %.3g lr down to layer 0 at %.3g lr, "
                       + "the embeddings at %.3g lr", layerDecay, modelConfig.numHiddenLayers - 1,
                       scales[scales.count - 2], scales[1], scales[0]))
        }
        if configuration.mixout > 0 {
            let weights = model.layout.linearWeights
            say("mixout \(configuration.mixout): \(weights.count) linear weights (\(weights.reduce(0) { $0 + $1.count }) "
                + "parameters) mixed with the weights training starts from, column by column, at every step")
        }
        if configuration.weightDecayTarget == .pretrained {
            say("weight decay \(recipe.weightDecay) pulls toward the weights training starts from (pretrained weight decay)"
                + (recipe.weightDecay == 0 ? ", which at 0 does nothing" : ""))
        }
        say("ranks: \(communicator.worldSize); backend \(backend.name), rank 0 on \(backend.placement); "
            + "products in \(backend.precision.rawValue)")
    }
    let trainer = try DataParallelTrainer(model: model, optimizer: optimizer, communicator: communicator,
                                          settings: settings, train: train, validation: validationSet,
                                          resumeFrom: resumeFrom)
    return try trainer.run()
}

/// The head to train: the options' where given, else the one config.json describes.
func trainingHead(_ configuration: TrainingConfiguration, model: ModelConfig, task: Task,
                  numLabels: Int) throws -> HeadSpec {
    let declared = HeadSpec(config: model)
    let pooling = configuration.pooling ?? declared.pooling
    guard let pooledLayers = configuration.pooledLayers else {
        let inherited = declared.pooling == .weightedLayers ? declared.pooledLayers : HeadSpec.defaultPooledLayers(model)
        return HeadSpec(pooling: pooling, task: task, numLabels: numLabels,
                        pooledLayers: pooling == .weightedLayers ? inherited : 0)
    }
    let option = "--pooled-layers \(pooledLayers)"
    let name = "\(model.source) (\(model.modelType.rawValue), \(model.numHiddenLayers) layers)"
    guard pooling == .weightedLayers else {
        throw TrainingError.optionDoesNotFit(option: option, model: name,
                                             reason: "it sets the weighted_layers head's depth, and the head is \(pooling.rawValue)")
    }
    guard (1...model.hiddenStateCount).contains(pooledLayers) else {
        throw TrainingError.optionDoesNotFit(
            option: option, model: name,
            reason: "there are \(model.hiddenStateCount) hidden states to pool (the embeddings' output and each layer's)")
    }
    return HeadSpec(pooling: pooling, task: task, numLabels: numLabels, pooledLayers: pooledLayers)
}

/// --reinit-layers, --layer-lr-decay and --mixout need one set of weights per layer, which
/// ALBERT's shared layers lack, and no more layers than the model has.
func checkLayerOptions(_ configuration: TrainingConfiguration, model: ModelConfig) throws {
    let name = "\(model.source) (\(model.modelType.rawValue), \(model.numHiddenLayers) layers)"
    let requested = [("--reinit-layers \(configuration.reinitLayers)", configuration.reinitLayers != 0),
                     ("--layer-lr-decay \(configuration.layerLearningRateDecay)", configuration.layerLearningRateDecay != 1),
                     ("--mixout \(configuration.mixout)", configuration.mixout > 0)]
    if model.modelType == .albert, let (option, _) = requested.first(where: \.1) {
        throw TrainingError.optionDoesNotFit(option: option, model: name,
                                             reason: "ALBERT's layers share one set of weights, so no layer can be treated apart")
    }
    if configuration.reinitLayers > model.numHiddenLayers {
        throw TrainingError.optionDoesNotFit(option: requested[0].0, model: name,
                                             reason: "there are only \(model.numHiddenLayers) layers to re-initialise")
    }
}
