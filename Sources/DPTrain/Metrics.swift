import DPModels
import Foundation

// Evaluation metrics, computed in Double, matching scipy.stats and sklearn.metrics on ordinary
// data. Where those return NaN or warn (a constant input), we return 0 instead, so that every
// value written to metrics.jsonl is a JSON number and "best checkpoint" comparisons stay total:
//   - pearson, spearman: 0 when either side is constant (scipy: NaN with a ConstantInputWarning);
//     a constant prediction carries no ranking information, so 0 is the honest score;
//   - f1, macro_f1: a class with no true and no predicted examples has F1 0
//     (sklearn's zero_division="warn" default, which also gives 0);
//   - mcc: 0 when the denominator is 0 (sklearn does the same).

/// The metrics that `evaluationMetrics` reports for `task`: what --metric-for-best may name.
public func metricNames(task: Task, numLabels: Int) -> [String] {
    switch task {
    case .regression: return ["rmse", "mae", "pearson", "spearman", "loss"]
    case .classification: return ["accuracy"] + (numLabels == 2 ? ["f1"] : []) + ["macro_f1", "mcc", "loss"]
    }
}

/// rmse, mae, pearson and spearman (average ranks for ties, as scipy.stats.spearmanr).
public func regressionMetrics(predictions: [Float], targets: [Float]) -> [String: Double] {
    precondition(predictions.count == targets.count && !predictions.isEmpty,
                 "metrics need as many predictions as targets, and at least one")
    let x = predictions.map(Double.init), y = targets.map(Double.init)
    let n = Double(x.count)
    var squared = 0.0, absolute = 0.0
    for (p, t) in zip(x, y) {
        squared += (p - t) * (p - t)
        absolute += abs(p - t)
    }
    return [
        "rmse": (squared / n).squareRoot(),
        "mae": absolute / n,
        "pearson": pearsonCorrelation(x, y),
        "spearman": pearsonCorrelation(averageRanks(x), averageRanks(y)),
    ]
}

/// accuracy, macro_f1 and mcc; f1 too when `numLabels` is 2 (positive class 1, as sklearn's
/// default `pos_label=1`). macro_f1 averages over the classes that occur in the labels or the
/// predictions, as sklearn does without `labels=`, so a class absent from a small validation set
/// does not drag the mean towards 0.
public func classificationMetrics(predictions: [Int], labels: [Int], numLabels: Int) -> [String: Double] {
    precondition(predictions.count == labels.count && !predictions.isEmpty,
                 "metrics need as many predictions as labels, and at least one")
    precondition(numLabels >= 1 && (predictions + labels).allSatisfy { (0..<numLabels).contains($0) },
                 "labels and predictions must lie in 0..<numLabels")
    // confusion[true][predicted]
    var confusion = Array(repeating: Array(repeating: 0, count: numLabels), count: numLabels)
    for (p, l) in zip(predictions, labels) { confusion[l][p] += 1 }

    let total = Double(labels.count)
    let correct = Double((0..<numLabels).reduce(0) { $0 + confusion[$1][$1] })
    let trueCounts = confusion.map { Double($0.reduce(0, +)) }
    let predictedCounts = (0..<numLabels).map { k in Double(confusion.reduce(0) { $0 + $1[k] }) }

    func f1(_ k: Int) -> Double {
        let denominator = trueCounts[k] + predictedCounts[k]
        return denominator == 0 ? 0 : 2 * Double(confusion[k][k]) / denominator
    }
    let present = (0..<numLabels).filter { trueCounts[$0] + predictedCounts[$0] > 0 }

    // sklearn's multiclass MCC: (c*s - sum p_k t_k) / sqrt((s^2 - sum p_k^2)(s^2 - sum t_k^2)).
    let crossProducts = zip(predictedCounts, trueCounts).reduce(0.0) { $0 + $1.0 * $1.1 }
    let predictedSquares = predictedCounts.reduce(0.0) { $0 + $1 * $1 }
    let trueSquares = trueCounts.reduce(0.0) { $0 + $1 * $1 }
    let mccDenominator = ((total * total - predictedSquares) * (total * total - trueSquares)).squareRoot()

    var metrics = [
        "accuracy": correct / total,
        "macro_f1": present.map(f1).reduce(0, +) / Double(present.count),
        "mcc": mccDenominator == 0 ? 0 : (correct * total - crossProducts) / mccDenominator,
    ]
    if numLabels == 2 { metrics["f1"] = f1(1) }
    return metrics
}

/// Pearson's r with means removed first (two passes, for accuracy), clipped to [-1, 1] as scipy
/// clips it; 0 when either side is constant (see the top of the file).
func pearsonCorrelation(_ x: [Double], _ y: [Double]) -> Double {
    // Tested by equality, as scipy tests it: a constant column's mean need not equal its values
    // exactly, which would leave a tiny spread and a meaningless r.
    guard x.contains(where: { $0 != x[0] }) && y.contains(where: { $0 != y[0] }) else { return 0 }
    let n = Double(x.count)
    let meanX = x.reduce(0, +) / n, meanY = y.reduce(0, +) / n
    var sxy = 0.0, sxx = 0.0, syy = 0.0
    for (a, b) in zip(x, y) {
        let dx = a - meanX, dy = b - meanY
        sxy += dx * dy
        sxx += dx * dx
        syy += dy * dy
    }
    return min(1, max(-1, sxy / (sxx.squareRoot() * syy.squareRoot())))
}

/// Ranks from 1, tied values sharing the mean of the ranks they span (scipy.stats.rankdata's
/// "average" method).
func averageRanks(_ values: [Double]) -> [Double] {
    let order = values.indices.sorted { values[$0] < values[$1] }
    var ranks = Array(repeating: 0.0, count: values.count)
    var start = 0
    while start < order.count {
        var end = start + 1
        while end < order.count && values[order[end]] == values[order[start]] { end += 1 }
        let shared = Double(start + 1 + end) / 2
        for i in start..<end { ranks[order[i]] = shared }
        start = end
    }
    return ranks
}
