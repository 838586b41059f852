// Tokenised examples, and the order in which a data-parallel run visits them. The order is a
// pure function of (seed, epoch), and a step's global batch is a pure function of the step, so
// every rank agrees on it without talking, and a resumed run (on any number of ranks) picks up
// exactly where the interrupted one stopped.

import DPModels
import DPTensor

public struct Example: Sendable, Equatable {
    public var inputIds: [Int32]
    public var typeIds: [Int32]
    /// The regression value, or the label's index for classification.
    public var target: Float
    /// The example's data row in its file (0-based, header excluded).
    public var row: Int

    public init(inputIds: [Int32], typeIds: [Int32], target: Float, row: Int) {
        self.inputIds = inputIds
        self.typeIds = typeIds
        self.target = target
        self.row = row
    }
}

public struct ExampleSet: Sendable {
    public var examples: [Example]
    public var task: Task
    /// Classification: the label names by index (index i is `labels[i]`); empty for regression.
    public var labels: [String]

    public init(examples: [Example], task: Task, labels: [String]) {
        self.examples = examples
        self.task = task
        self.labels = labels
    }

    public var count: Int { examples.count }
    public var numLabels: Int { task == .regression ? 1 : labels.count }

    /// The targets of `indices`, in the form the model's loss takes.
    public func targets(_ indices: [Int]) -> Targets {
        switch task {
        case .regression: return .regression(indices.map { examples[$0].target })
        case .classification: return .classification(indices.map { Int32(examples[$0].target) })
        }
    }

    /// A batch of `indices` padded to its longest member. `exampleIndices` keys the dropout masks.
    public func batch(_ indices: [Int], exampleIndices: [Int32], modelType: ModelConfig.ModelType,
                      padTokenId: Int) -> EncoderBatch {
        EncoderBatch(sequences: indices.map { examples[$0].inputIds }, typeIds: indices.map { examples[$0].typeIds },
                     exampleIndices: exampleIndices, modelType: modelType, padTokenId: padTokenId)
    }
}

/// Which examples each optimizer step sees: a seeded shuffle per epoch, cut into global batches
/// (the last batch of an epoch may be smaller, as with drop_last=False in a PyTorch DataLoader).
/// With `lengths`, the shuffle is grouped by length as the HF Trainer's `group_by_length` does.
public struct DataSchedule: Sendable, Equatable {
    public let exampleCount: Int
    public let globalBatchSize: Int
    public let seed: UInt64
    /// Each example's tokens, when batches are grouped by length; nil for a plain shuffle.
    public let lengths: [Int]?

    public init(exampleCount: Int, globalBatchSize: Int, seed: UInt64, lengths: [Int]? = nil) {
        precondition(exampleCount > 0 && globalBatchSize > 0)
        precondition(lengths.map { $0.count == exampleCount } ?? true)
        self.exampleCount = exampleCount
        self.globalBatchSize = globalBatchSize
        self.seed = seed
        self.lengths = lengths
    }

    public var stepsPerEpoch: Int { (exampleCount + globalBatchSize - 1) / globalBatchSize }

    public func epoch(ofStep step: Int) -> Int { step / stepsPerEpoch }

    /// The epoch's shuffle, seeded by (seed, epoch), grouped by length when `lengths` is set.
    public func order(epoch: Int) -> [Int] {
        let shuffled = seededPermutation(count: exampleCount, seed: seed ^ (UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15))
        guard let lengths else { return shuffled }
        return lengthGroupedOrder(shuffled: shuffled, lengths: lengths, batchSize: globalBatchSize)
    }

    /// The example indices of global step `step` (0-based), in batch order.
    public func globalBatch(step: Int, order: [Int]) -> [Int] {
        let start = (step % stepsPerEpoch) * globalBatchSize
        return Array(order[start..<min(start + globalBatchSize, exampleCount)])
    }
}

/// transformers' `get_length_grouped_indices` (the HF Trainer's `group_by_length`) applied to
/// `shuffled`, which stands in for its `torch.randperm`: the shuffle is cut into megabatches of
/// min(count / (4 batchSize), 50) batches (at least one), each megabatch is sorted by length,
/// longest first and ties in shuffled order, and the longest example of all is swapped to the
/// front, so that a batch too large for memory fails at the first step. Batches then hold
/// examples of similar length, which cuts padding, and the ranks' shards of one global batch
/// take similar time.
public func lengthGroupedOrder(shuffled: [Int], lengths: [Int], batchSize: Int) -> [Int] {
    let megabatchSize = max(1, min(shuffled.count / (batchSize * 4), 50)) * batchSize
    var megabatches = stride(from: 0, to: shuffled.count, by: megabatchSize).map { start in
        // Python's sorted is stable; Swift's sort is not, so the shuffled position breaks ties.
        shuffled[start..<min(start + megabatchSize, shuffled.count)].enumerated()
            .sorted { (lengths[$0.element], $1.offset) > (lengths[$1.element], $0.offset) }
            .map(\.element)
    }
    let maximums = megabatches.map { lengths[$0[0]] }
    // torch.argmax: the first megabatch holding the longest example.
    let longest = maximums.firstIndex(of: maximums.max()!)!
    (megabatches[0][0], megabatches[longest][0]) = (megabatches[longest][0], megabatches[0][0])
    return megabatches.flatMap { $0 }
}

/// A Fisher-Yates shuffle of 0..<count; the same on every rank and platform.
public func seededPermutation(count: Int, seed: UInt64) -> [Int] {
    var generator = SeededGenerator(seed: seed)
    var order = Array(0..<count)
    for i in stride(from: count - 1, to: 0, by: -1) { order.swapAt(i, Int(generator.next() % UInt64(i + 1))) }
    return order
}

/// The positions of a global batch of `count` examples that `rank` computes: contiguous, and as
/// even as possible, the first `count % worldSize` ranks taking one more (16 over 3 is 6/5/5).
public func shardRange(count: Int, rank: Int, worldSize: Int) -> Range<Int> {
    let base = count / worldSize, extra = count % worldSize
    let start = rank * base + min(rank, extra)
    return start..<(start + base + (rank < extra ? 1 : 0))
}

/// `range` cut into consecutive pieces of at most `size` (the whole range when `size` is nil).
public func chunks(of range: Range<Int>, size: Int?) -> [Range<Int>] {
    guard let size, size < range.count else { return range.isEmpty ? [] : [range] }
    return stride(from: range.lowerBound, to: range.upperBound, by: size).map { $0..<min($0 + size, range.upperBound) }
}
