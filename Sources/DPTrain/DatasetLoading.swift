// From users' tables to tokenised examples: the text (and optional pair) columns through the
// checkpoint's tokenizer, the label column into targets. Bad data fails here, before any
// training, with the file, line and column: a label that does not parse, a NaN target, an
// empty text, a validation label that training never saw.

import DPData
import DPModels
import DPTensor
import DPTokenizers
import Foundation

public struct DataColumns: Sendable, Equatable {
    public var text: String
    public var textPair: String?
    public var label: String

    public init(text: String, textPair: String?, label: String) {
        self.text = text
        self.textPair = textPair
        self.label = label
    }
}

/// The task a label column implies, and why: labels that are not all numbers, or are
/// integers with at most 20 distinct values, mean classification; other numbers mean regression.
public func inferTask(table: Table, labelColumn: String) throws -> (task: Task, reason: String) {
    let values = try table.column(labelColumn).map { $0.trimmingCharacters(in: .whitespaces) }
    let distinct = Set(values)
    if values.contains(where: { Double($0) == nil }) {
        return (.classification, "column '\(labelColumn)' holds text labels (\(distinct.count) distinct)")
    }
    if values.allSatisfy({ Int($0) != nil }), distinct.count <= 20 {
        return (.classification, "column '\(labelColumn)' holds \(distinct.count) distinct integers")
    }
    return (.regression, "column '\(labelColumn)' holds real numbers")
}

/// Classification labels in a stable order: numerically when every label is an integer
/// (so 0/1 keep their indices), else by text.
public func labelNames(table: Table, labelColumn: String, rows: [Int]) throws -> [String] {
    let values = try table.column(labelColumn).map { $0.trimmingCharacters(in: .whitespaces) }
    let distinct = Set(rows.map { values[$0] })
    if distinct.allSatisfy({ Int($0) != nil }) {
        return distinct.sorted { Int($0)! < Int($1)! }
    }
    return distinct.sorted()
}

/// The examples of `rows` of `table`; `labels` (classification) maps label names to indices.
public func loadExamples(table: Table, rows: [Int], columns: DataColumns, task: Task, labels: [String],
                         tokenizer: Tokenizer, maxLength: Int) throws -> ExampleSet {
    var targets: [Float]
    switch task {
    case .regression:
        targets = try table.floats(columns.label)
    case .classification:
        let index = Dictionary(uniqueKeysWithValues: labels.enumerated().map { ($0.element, Float($0.offset)) })
        let values = try table.column(columns.label)
        targets = [Float](repeating: 0, count: table.rowCount)
        for row in rows {
            let label = values[row].trimmingCharacters(in: .whitespaces)
            guard let target = index[label] else {
                throw table.error(row: row, column: columns.label,
                                  "label '\(label)' never occurs in the training data (labels: \(labels.joined(separator: ", ")))")
            }
            targets[row] = target
        }
    }
    var examples = try encodeTexts(table: table, rows: rows, text: columns.text, pair: columns.textPair,
                                   tokenizer: tokenizer, maxLength: maxLength)
    for index in examples.indices { examples[index].target = targets[examples[index].row] }
    return ExampleSet(examples: examples, task: task, labels: task == .classification ? labels : [])
}

/// `rows` of `table` tokenised (in parallel; the tokenizer is immutable), with no target yet.
public func encodeTexts(table: Table, rows: [Int], text: String, pair: String?, tokenizer: Tokenizer,
                        maxLength: Int) throws -> [Example] {
    let texts = try table.texts(text)
    let pairs = try pair.map { try table.texts($0) }
    var examples = [Example](repeating: Example(inputIds: [], typeIds: [], target: 0, row: 0), count: rows.count)
    examples.withUnsafeMutableBufferPointer { output in
        let destination = output
        DispatchQueue.concurrentPerform(iterations: rows.count) { position in
            let row = rows[position]
            let encoding = tokenizer.encode(texts[row], pair: pairs?[row], maxLength: maxLength)
            destination[position] = Example(inputIds: encoding.ids, typeIds: encoding.typeIds, target: 0, row: row)
        }
    }
    return examples
}

/// A fixed split of `count` rows: a seeded shuffle, the first `fraction` of it for validation;
/// both parts are returned in file order.
public func splitRows(count: Int, validationFraction: Double, seed: UInt64) -> (train: [Int], validation: [Int]) {
    let order = seededPermutation(count: count, seed: seed)
    let validationCount = Int((Double(count) * validationFraction).rounded())
    return (order[validationCount...].sorted(), order[..<validationCount].sorted())
}

/// Each row's stratum for a stratified split: classification by label; regression by equal-width
/// bins of the target, 1 + floor(log2(rows)) of them (Sturges' rule, as the CommonLit notebooks
/// binned targets for StratifiedKFold). A target that does not parse throws with its line.
public func strata(table: Table, labelColumn: String, task: Task) throws -> [Int] {
    switch task {
    case .classification:
        let labels = try table.column(labelColumn).map { $0.trimmingCharacters(in: .whitespaces) }
        let index = Dictionary(uniqueKeysWithValues: Set(labels).sorted().enumerated().map { ($0.element, $0.offset) })
        return labels.map { index[$0]! }
    case .regression:
        let targets = try table.floats(labelColumn)
        guard let low = targets.min(), let high = targets.max(), high > low else {
            return [Int](repeating: 0, count: targets.count)
        }
        let bins = 1 + Int(log2(Double(targets.count)))
        return targets.map { min(bins - 1, Int(Double($0 - low) / Double(high - low) * Double(bins))) }
    }
}

/// Fold `fold` of a stratified `folds`-fold cross-validation, as validation; both parts are
/// returned in file order. Each stratum's rows, shuffled by `seed`, are dealt to the folds in
/// turn, the turn carrying on from one stratum to the next: every fold then holds each
/// stratum's share to within one row, the folds' sizes differ by at most one, and the folds of
/// one seed partition the rows.
public func crossValidationSplit(strata: [Int], folds: Int, fold: Int, seed: UInt64) -> (train: [Int], validation: [Int]) {
    precondition(folds >= 2 && (0..<folds).contains(fold), "fold \(fold) of \(folds)")
    let rowsByStratum = Dictionary(grouping: strata.indices, by: { strata[$0] })
    var dealt = 0
    var isValidation = [Bool](repeating: false, count: strata.count)
    for stratum in rowsByStratum.keys.sorted() {
        let rows = rowsByStratum[stratum]!
        let stratumSeed = seed ^ (UInt64(stratum + 1) &* 0xD6E8_FEB8_6659_FD93)
        for position in seededPermutation(count: rows.count, seed: stratumSeed) {
            isValidation[rows[position]] = dealt % folds == fold
            dealt += 1
        }
    }
    return (strata.indices.filter { !isValidation[$0] }, strata.indices.filter { isValidation[$0] })
}
