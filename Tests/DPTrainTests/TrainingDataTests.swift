import DPData
import DPTensor
import DPTestSupport
import DPTrain
import Foundation
import XCTest

/// How a global batch is cut over ranks and micro-batches, and the seeded data order: the
/// invariants that make a run independent of its rank count.
final class TrainingDataTests: XCTestCase {
    func testShardsAreContiguousEvenAndCoverTheBatch() {
        for count in [1, 5, 16, 17] {
            for world in 1...8 {
                let shards = (0..<world).map { shardRange(count: count, rank: $0, worldSize: world) }
                XCTAssertEqual(shards.first?.lowerBound, 0)
                XCTAssertEqual(shards.last?.upperBound, count)
                for (a, b) in zip(shards, shards.dropFirst()) { XCTAssertEqual(a.upperBound, b.lowerBound) }
                let sizes = shards.map(\.count)
                XCTAssertLessThanOrEqual(sizes.max()! - sizes.min()!, 1, "count \(count) over \(world) ranks: \(sizes)")
                XCTAssertEqual(sizes, sizes.sorted(by: >), "larger shards come first")
            }
        }
        XCTAssertEqual((0..<3).map { shardRange(count: 16, rank: $0, worldSize: 3).count }, [6, 5, 5])
    }

    func testChunksCoverTheRangeInOrder() {
        let range = 7..<20
        for size in [nil, 1, 3, 13, 50] as [Int?] {
            let pieces = chunks(of: range, size: size)
            XCTAssertEqual(pieces.flatMap { Array($0) }, Array(range))
            if let size { XCTAssertTrue(pieces.allSatisfy { $0.count <= size }) }
        }
        XCTAssertTrue(chunks(of: 4..<4, size: 2).isEmpty)
    }

    func testEpochOrderIsASeededPermutationThatChangesEachEpoch() {
        let schedule = DataSchedule(exampleCount: 50, globalBatchSize: 16, seed: 7)
        let first = schedule.order(epoch: 0)
        XCTAssertEqual(first.sorted(), Array(0..<50))
        XCTAssertEqual(first, DataSchedule(exampleCount: 50, globalBatchSize: 16, seed: 7).order(epoch: 0))
        XCTAssertNotEqual(first, schedule.order(epoch: 1))
        XCTAssertNotEqual(first, DataSchedule(exampleCount: 50, globalBatchSize: 16, seed: 8).order(epoch: 0))
    }

    func testGlobalBatchesVisitEveryExampleOncePerEpochKeepingTheLastPartialBatch() {
        let schedule = DataSchedule(exampleCount: 50, globalBatchSize: 16, seed: 1)
        XCTAssertEqual(schedule.stepsPerEpoch, 4)
        for epoch in 0..<2 {
            let order = schedule.order(epoch: epoch)
            let steps = (epoch * 4)..<(epoch * 4 + 4)
            XCTAssertTrue(steps.allSatisfy { schedule.epoch(ofStep: $0) == epoch })
            let batches = steps.map { schedule.globalBatch(step: $0, order: order) }
            XCTAssertEqual(batches.map(\.count), [16, 16, 16, 2])
            XCTAssertEqual(batches.flatMap { $0 }, order)
        }
    }

    // MARK: Grouping by length

    /// Lengths with many ties and a long tail, as tokenised sentences have.
    private func sentenceLengths(count: Int, seed: UInt64) -> [Int] {
        var generator = SeededGenerator(seed: seed)
        return (0..<count).map { _ in 3 + Int(generator.next() % 40) * Int(1 + generator.next() % 3) }
    }

    func testGroupedOrderIsTheShuffleWithEachMegabatchSortedAndTheLongestFirst() {
        for (count, batch) in [(1000, 16), (37, 16), (5000, 8), (16, 16), (1, 4)] {
            let lengths = sentenceLengths(count: count, seed: UInt64(count))
            let schedule = DataSchedule(exampleCount: count, globalBatchSize: batch, seed: 3, lengths: lengths)
            let shuffled = DataSchedule(exampleCount: count, globalBatchSize: batch, seed: 3).order(epoch: 1)
            let grouped = schedule.order(epoch: 1)
            XCTAssertEqual(grouped.sorted(), Array(0..<count), "a permutation")
            XCTAssertEqual(lengths[grouped[0]], lengths.max(), "the longest example leads")
            // Undo the swap that brought the longest example to the front; then each megabatch
            // must be its slice of the shuffle, sorted longest first, ties in shuffled order.
            let megabatch = max(1, min(count / (batch * 4), 50)) * batch
            let home = shuffled.firstIndex(of: grouped[0])! / megabatch * megabatch
            var unswapped = grouped
            unswapped.swapAt(0, home)
            for start in stride(from: 0, to: count, by: megabatch) {
                let range = start..<min(start + megabatch, count)
                XCTAssertEqual(Set(unswapped[range]), Set(shuffled[range]), "megabatch \(start) holds its slice of the shuffle")
                for (a, b) in zip(unswapped[range], unswapped[range].dropFirst()) {
                    XCTAssertGreaterThanOrEqual(lengths[a], lengths[b], "longest first within a megabatch")
                    if lengths[a] == lengths[b] {
                        XCTAssertLessThan(shuffled.firstIndex(of: a)!, shuffled.firstIndex(of: b)!, "ties keep the shuffled order")
                    }
                }
            }
        }
    }

    func testGroupingCutsPaddingAndStillChangesEachEpoch() {
        let count = 2000, batch = 16
        let lengths = sentenceLengths(count: count, seed: 11)
        let plain = DataSchedule(exampleCount: count, globalBatchSize: batch, seed: 5)
        let grouped = DataSchedule(exampleCount: count, globalBatchSize: batch, seed: 5, lengths: lengths)
        func paddedTokens(_ schedule: DataSchedule) -> Int {
            let order = schedule.order(epoch: 0)
            return (0..<schedule.stepsPerEpoch).reduce(0) { total, step in
                let members = schedule.globalBatch(step: step, order: order)
                return total + members.count * members.map { lengths[$0] }.max()!
            }
        }
        let tokens = lengths.reduce(0, +)
        XCTAssertLessThan(paddedTokens(grouped) - tokens, (paddedTokens(plain) - tokens) / 4,
                          "grouping removes most of the padding")
        XCTAssertNotEqual(grouped.order(epoch: 0), grouped.order(epoch: 1))
        XCTAssertEqual(grouped.order(epoch: 2), DataSchedule(exampleCount: count, globalBatchSize: batch, seed: 5,
                                                             lengths: lengths).order(epoch: 2))
    }

    /// The grouping against transformers' own get_length_grouped_indices, with its torch.randperm
    /// replaced by our shuffle (the one random step; the rest must then agree index for index).
    func testGroupedOrderMatchesTransformers() throws {
        guard let python = referencePython else {
            throw XCTSkip("DPTRAIN_PYTHON is not set; skipping the comparison with transformers' get_length_grouped_indices")
        }
        let script = """
        import json, sys, torch
        from transformers.trainer_pt_utils import get_length_grouped_indices
        results = []
        for case in json.load(sys.stdin):
            torch.randperm = lambda n, generator=None, shuffled=case["shuffled"]: torch.tensor(shuffled)
            results.append(get_length_grouped_indices(case["lengths"], case["batch"]))
        print(json.dumps(results))
        """
        var cases: [[String: Any]] = [], expected: [[Int]] = []
        for (count, batch) in [(1000, 16), (37, 16), (5000, 8), (203, 3), (1, 4)] {
            let lengths = sentenceLengths(count: count, seed: UInt64(count) + 1)
            let schedule = DataSchedule(exampleCount: count, globalBatchSize: batch, seed: 9, lengths: lengths)
            let shuffled = DataSchedule(exampleCount: count, globalBatchSize: batch, seed: 9).order(epoch: 0)
            cases.append(["lengths": lengths, "batch": batch, "shuffled": shuffled])
            expected.append(schedule.order(epoch: 0))
        }
        let data = try runPython(python, script, input: try JSONSerialization.data(withJSONObject: cases))
        let reference = try JSONDecoder().decode([[Int]].self, from: data)
        XCTAssertEqual(reference.count, expected.count)
        for (index, (ours, theirs)) in zip(expected, reference).enumerated() {
            XCTAssertEqual(ours, theirs, "case \(index): the orders differ")
        }
    }

    func testValidationSplitIsFixedDisjointAndComplete() {
        let split = splitRows(count: 101, validationFraction: 0.1, seed: 0)
        XCTAssertEqual(split.validation.count, 10)
        XCTAssertEqual((split.train + split.validation).sorted(), Array(0..<101))
        XCTAssertEqual(split.train, split.train.sorted())
        XCTAssertEqual(split.validation, splitRows(count: 101, validationFraction: 0.1, seed: 0).validation)
        XCTAssertNotEqual(split.validation, splitRows(count: 101, validationFraction: 0.1, seed: 1).validation)
    }
}

/// The task a label column implies, and the label order that keeps integer labels' indices.
final class TaskInferenceTests: XCTestCase {
    private func table(_ text: String) throws -> Table {
        try Table(parsing: Data(text.utf8), format: .tsv, url: URL(fileURLWithPath: "inline.tsv"))
    }

    func testTheLabelColumnDecidesTheTask() throws {
        XCTAssertEqual(try inferTask(table: table("text\tlabel\na\t0\nb\t1\n"), labelColumn: "label").task, .classification)
        XCTAssertEqual(try inferTask(table: table("text\tlabel\na\tpos\nb\tneg\n"), labelColumn: "label").task, .classification)
        XCTAssertEqual(try inferTask(table: table("text\tlabel\na\t0.5\nb\t-1.25\n"), labelColumn: "label").task, .regression)
        let manyIntegers = "text\tlabel\n" + (0..<30).map { "t\t\($0)\n" }.joined()
        XCTAssertEqual(try inferTask(table: table(manyIntegers), labelColumn: "label").task, .regression)
    }

    func testIntegerLabelsSortNumericallyAndTextLabelsAlphabetically() throws {
        let integers = try table("text\tlabel\na\t10\nb\t2\nc\t1\n")
        XCTAssertEqual(try labelNames(table: integers, labelColumn: "label", rows: [0, 1, 2]), ["1", "2", "10"])
        let words = try table("text\tlabel\na\tpos\nb\tneg\nc\tneutral\n")
        XCTAssertEqual(try labelNames(table: words, labelColumn: "label", rows: [0, 1]), ["neg", "pos"])
    }
}

/// Stratified k-fold cross-validation (--folds, --fold): the folds partition the rows, and each
/// holds every stratum's share to within one row.
final class CrossValidationTests: XCTestCase {
    /// Three strata of unequal sizes, interleaved in file order.
    private let strataOfRows = (0..<103).map { [0, 0, 0, 1, 1, 2][($0 * 7 + $0 / 3) % 6] }

    func testFoldsPartitionTheRowsAndBalanceEveryStratum() {
        let folds = 5
        let splits = (0..<folds).map { crossValidationSplit(strata: strataOfRows, folds: folds, fold: $0, seed: 9) }
        XCTAssertEqual(splits.flatMap(\.validation).sorted(), Array(strataOfRows.indices), "each row in exactly one fold")
        for split in splits {
            XCTAssertEqual((split.train + split.validation).sorted(), Array(strataOfRows.indices))
            XCTAssertEqual(split.validation, split.validation.sorted(), "file order")
            XCTAssertEqual(split.train, split.train.sorted(), "file order")
        }
        let sizes = splits.map(\.validation.count)
        XCTAssertLessThanOrEqual(sizes.max()! - sizes.min()!, 1, "fold sizes \(sizes)")
        for stratum in Set(strataOfRows) {
            let counts = splits.map { $0.validation.filter { strataOfRows[$0] == stratum }.count }
            XCTAssertLessThanOrEqual(counts.max()! - counts.min()!, 1, "stratum \(stratum) per fold: \(counts)")
        }
    }

    func testTheSplitIsSeeded() {
        let split = crossValidationSplit(strata: strataOfRows, folds: 5, fold: 2, seed: 9)
        XCTAssertEqual(split.validation, crossValidationSplit(strata: strataOfRows, folds: 5, fold: 2, seed: 9).validation)
        XCTAssertNotEqual(split.validation, crossValidationSplit(strata: strataOfRows, folds: 5, fold: 2, seed: 10).validation)
    }

    func testRegressionStrataAreOrderedBinsOfTheTarget() throws {
        let targets = (0..<64).map { Float(($0 * 37) % 64) / 8 - 3 }
        let table = try Table(parsing: Data(("label\n" + targets.map { "\($0)" }.joined(separator: "\n") + "\n").utf8),
                              format: .tsv, url: URL(fileURLWithPath: "inline.tsv"))
        let bins = try strata(table: table, labelColumn: "label", task: .regression)
        XCTAssertEqual(Set(bins), Set(0..<7), "1 + log2(64) = 7 bins, all used by evenly spread targets")
        for i in targets.indices {
            for j in targets.indices where targets[i] < targets[j] {
                XCTAssertLessThanOrEqual(bins[i], bins[j], "a larger target never lands in a lower bin")
            }
        }
        let labels = try Table(parsing: Data("label\nb\na\nb\n".utf8), format: .tsv, url: URL(fileURLWithPath: "inline.tsv"))
        XCTAssertEqual(try strata(table: labels, labelColumn: "label", task: .classification), [1, 0, 1])
    }
}
