// A training checkpoint: the model in the Hugging Face layout (config.json, model.safetensors,
// the tokenizer files) plus what resuming needs: AdamW's moments (optimizer.safetensors) and
// trainer_state.json. Rank 0 writes it into a hidden temporary folder and renames that to
// checkpoint-<step> only when every file is on disk, so a crash at any moment leaves either
// no new checkpoint or a complete one; a resume considers only the renamed folders.

import DPModels
import Foundation

/// Everything besides tensors that a resumed run needs. The data order and dropout masks are
/// functions of (seed, step), so the step is the whole data cursor and the seed the whole RNG.
public struct TrainerState: Codable, Sendable, Equatable {
    public var step: Int
    public var epoch: Int
    public var totalSteps: Int
    public var optimizerStep: Int
    public var seed: UInt64
    public var globalBatchSize: Int
    public var trainExamples: Int
    public var learningRate: Float
    public var badStepsInARow: Int
    public var metricForBest: String
    public var bestMetric: Double?
    public var bestStep: Int?
    public var task: String
    public var labels: [String]
    /// How many ranks wrote it; informational, since a resume may use another count.
    public var worldSize: Int
    /// nil in checkpoints written before layer-wise decay existed, which is 1.
    public var layerLearningRateDecay: Float?
    /// nil without a split of --train, and in checkpoints written before splits were recorded.
    public var validationSplit: String?
    /// nil in checkpoints written before pretrained weight decay existed, which decay toward 0.
    public var weightDecayTarget: WeightDecayTarget?
    /// nil in checkpoints written before --group-by-length existed, which shuffled plainly.
    public var groupByLength: Bool?
    /// Evaluations since the best metric last improved by more than the early-stopping
    /// threshold; nil in checkpoints written before early stopping existed.
    public var evalsWithoutImprovement: Int?
    /// nil in checkpoints written before --mixout existed, which is 0.
    public var mixout: Float?

    enum CodingKeys: String, CodingKey {
        case step, epoch, seed, task, labels
        case totalSteps = "total_steps", optimizerStep = "optimizer_step", globalBatchSize = "global_batch_size"
        case trainExamples = "train_examples", learningRate = "learning_rate", badStepsInARow = "bad_steps_in_a_row"
        case metricForBest = "metric_for_best", bestMetric = "best_metric", bestStep = "best_step"
        case worldSize = "world_size", layerLearningRateDecay = "layer_lr_decay", validationSplit = "validation_split"
        case weightDecayTarget = "weight_decay_target", groupByLength = "group_by_length"
        case evalsWithoutImprovement = "evals_without_improvement", mixout
    }
}

public struct CheckpointStore {
    public static let stateName = "trainer_state.json"
    public static let optimizerName = "optimizer.safetensors"
    public let folder: URL

    public init(folder: URL) { self.folder = folder }

    public func url(step: Int) -> URL { folder.appendingPathComponent("checkpoint-\(step)") }

    /// Complete checkpoints, oldest first. A folder counts once it has been renamed into place
    /// and holds every file; a half-written one is still hidden under its temporary name.
    public func complete() -> [(step: Int, url: URL)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.compactMap { name -> (Int, URL)? in
            guard name.hasPrefix("checkpoint-"), let step = Int(name.dropFirst("checkpoint-".count)) else { return nil }
            let url = folder.appendingPathComponent(name)
            let files = [CheckpointFolder.configName, CheckpointFolder.weightsName, Self.stateName, Self.optimizerName]
            guard files.allSatisfy({ FileManager.default.fileExists(atPath: url.appendingPathComponent($0).path) })
            else { return nil }
            return (step, url)
        }.sorted { $0.0 < $1.0 }
    }

    /// Writes checkpoint-<step>; returns its URL.
    @discardableResult
    public func save(model: EncoderModel, optimizer: AdamWOptimizer, state: TrainerState,
                     extraFiles: [URL]) throws -> URL {
        let manager = FileManager.default
        let final = url(step: state.step)
        let temporary = folder.appendingPathComponent(".checkpoint-\(state.step).partial")
        try? manager.removeItem(at: temporary)
        do {
            try model.save(to: temporary, extraFiles: extraFiles,
                           labels: state.task == Task.classification.rawValue ? state.labels : nil)
            try optimizer.save(to: temporary.appendingPathComponent(Self.optimizerName))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try AtomicFile.save(try encoder.encode(state), to: temporary.appendingPathComponent(Self.stateName))
            if manager.fileExists(atPath: final.path) { try manager.removeItem(at: final) }
            try manager.moveItem(at: temporary, to: final)
            AtomicFile.syncFolder(of: final)
        } catch {
            try? manager.removeItem(at: temporary)
            if let known = error as? CheckpointError { throw known }
            throw TrainingError.cannotWrite(path: final.path, reason: error.localizedDescription)
        }
        return final
    }

    /// Removes all but the newest `keep` checkpoints, sparing `protected` (the best one).
    public func prune(keep: Int, protected: Int?) {
        let all = complete()
        for (step, url) in all.dropLast(keep) where step != protected {
            try? FileManager.default.removeItem(at: url)
        }
    }

    public func readState(at checkpoint: URL) throws -> TrainerState {
        let url = checkpoint.appendingPathComponent(Self.stateName)
        do {
            return try JSONDecoder().decode(TrainerState.self, from: Data(contentsOf: url))
        } catch let DecodingError.keyNotFound(key, _) {
            throw TrainingError.badTrainerState(path: url.path, field: key.stringValue, reason: "missing")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw TrainingError.badTrainerState(path: url.path, field: field, reason: context.debugDescription)
        } catch {
            throw TrainingError.badTrainerState(path: url.path, field: "(file)", reason: error.localizedDescription)
        }
    }
}

extension AdamWOptimizer {
    static let momentNames = (m: "adamw.exp_avg", v: "adamw.exp_avg_sq")
    /// The name from when the starting weights were the pretrained decay's alone; kept, so that
    /// those checkpoints resume.
    static let startingWeightsName = "adamw.decay_target"

    /// The buffers a checkpoint keeps: the moments, and the starting weights where kept.
    private var savedBuffers: [(name: String, buffer: UnsafeMutablePointer<Float>)] {
        [(Self.momentNames.m, m), (Self.momentNames.v, v)] + (startingWeights.map { [(Self.startingWeightsName, $0)] } ?? [])
    }

    func save(to url: URL) throws {
        let saved = savedBuffers
        var host = [Float](repeating: 0, count: saved.count * count) // (buffers, P)
        host.withUnsafeMutableBufferPointer { all in
            for (index, buffer) in saved.enumerated() {
                backend.download(all.baseAddress! + index * count, from: buffer.buffer, count: count)
            }
        }
        try host.withUnsafeBufferPointer { all in
            try SafeTensorsWriter.write(saved.enumerated().map { index, buffer in
                (name: buffer.name, shape: [count], values: UnsafeBufferPointer(rebasing: all[(index * count)..<((index + 1) * count)]))
            }, metadata: ["step": String(step)], to: url)
        }
    }

    /// Restores what `save` wrote, and the update count.
    public func restore(from checkpoint: URL, step: Int) throws {
        let url = checkpoint.appendingPathComponent(CheckpointStore.optimizerName)
        let file = try SafeTensorsFile(contentsOf: url)
        for (name, buffer) in savedBuffers {
            guard file.info(name)?.shape == [count] else {
                throw CheckpointError.shapeMismatch(file: url.path, tensor: name, expected: [count],
                                                    found: file.info(name)?.shape ?? [])
            }
            let values = try file.floats(name)
            values.withUnsafeBufferPointer { backend.upload(buffer, from: $0.baseAddress!, count: count) }
        }
        self.step = step
    }
}
