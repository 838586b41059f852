import DPModels
import DPTensor
import DPTrain
import DPTestSupport
import Foundation
import XCTest

/// Metrics against scipy/numpy (when DPTRAIN_PYTHON names an interpreter that has them) and
/// against invariants that need no reference at all.
final class MetricsTests: XCTestCase {
    /// Float inputs, Double sums: agreement with numpy's float64 is expected to rounding only.
    let tolerance = 1e-9

    func assertClose(_ actual: [String: Double], _ expected: [String: Double], _ context: String,
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(Set(actual.keys), Set(expected.keys), context, file: file, line: line)
        for (key, value) in expected {
            XCTAssertEqual(actual[key] ?? .nan, value, accuracy: tolerance, "\(context): \(key)", file: file, line: line)
        }
    }

    // MARK: Against scipy and numpy

    func testRegressionAgainstScipy() throws {
        var generator = SeededGenerator(seed: 17)
        var cases: [(String, [Float], [Float])] = []
        for n in [2, 3, 10, 257] {
            let targets = (0..<n).map { _ in generator.nextGaussian() }
            let noisy = targets.map { $0 * 0.7 + generator.nextGaussian() }
            cases.append(("random n=\(n)", noisy, targets))
        }
        // Ties on both sides: values on a coarse grid.
        let tiedTargets = (0..<60).map { _ in Float(Int.random(in: -3...3, using: &generator)) }
        let tiedPredictions = tiedTargets.map { ($0 + Float(Int.random(in: -2...2, using: &generator))) / 2 }
        cases.append(("ties", tiedPredictions, tiedTargets))
        cases.append(("anti-correlated", [3, 2, 1, 0], [0, 1, 2, 3.5]))

        let script = """
        import json, sys
        import numpy as np
        from scipy import stats
        out = []
        for p, t in json.load(sys.stdin):
            p = np.asarray(p, dtype=np.float32).astype(np.float64)
            t = np.asarray(t, dtype=np.float32).astype(np.float64)
            out.append({"rmse": float(np.sqrt(np.mean((p - t) ** 2))), "mae": float(np.mean(np.abs(p - t))),
                        "pearson": float(stats.pearsonr(p, t)[0]), "spearman": float(stats.spearmanr(p, t)[0])})
        print(json.dumps(out))
        """
        let expected = try referenceMetrics(script, input: cases.map { [$0.1, $0.2] })
        for (index, (name, predictions, targets)) in cases.enumerated() {
            assertClose(regressionMetrics(predictions: predictions, targets: targets), expected[index], name)
        }
    }

    func testClassificationAgainstNumpy() throws {
        var generator = SeededGenerator(seed: 5)
        var cases: [(String, [Int], [Int], Int)] = []
        for (k, n) in [(2, 50), (3, 200), (5, 37)] {
            let labels = (0..<n).map { _ in Int.random(in: 0..<k, using: &generator) }
            let predictions = labels.map { Int.random(in: 0..<4, using: &generator) == 0 ? Int.random(in: 0..<k, using: &generator) : $0 }
            cases.append(("k=\(k) n=\(n)", predictions, labels, k))
        }
        cases.append(("class 3 of 4 never occurs", [0, 1, 2, 2, 1, 0], [0, 1, 1, 2, 2, 0], 4))
        cases.append(("binary, no positives at all", [0, 0, 0], [0, 0, 0], 2))

        // An independent route: MCC as the correlation of one-hot matrices (Gorodkin 2004),
        // F1 per class from its own counts, classes as numpy finds them in the data.
        let script = """
        import json, sys
        import numpy as np
        out = []
        for p, l, k in json.load(sys.stdin):
            p, l = np.asarray(p), np.asarray(l)
            X, Y = np.eye(k)[p], np.eye(k)[l]
            X, Y = X - X.mean(0), Y - Y.mean(0)
            cxy, cxx, cyy = (X * Y).sum(), (X * X).sum(), (Y * Y).sum()
            mcc = cxy / np.sqrt(cxx * cyy) if cxx * cyy > 0 else 0.0
            def f1(c):
                tp = np.sum((p == c) & (l == c)); fp = np.sum((p == c) & (l != c)); fn = np.sum((p != c) & (l == c))
                return 0.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)
            present = np.union1d(p, l)
            r = {"accuracy": float(np.mean(p == l)), "macro_f1": float(np.mean([f1(c) for c in present])), "mcc": float(mcc)}
            if k == 2:
                r["f1"] = float(f1(1))
            out.append(r)
        print(json.dumps(out))
        """
        let expected = try referenceMetrics(script, input: cases.map { [$0.1, $0.2, $0.3] as [Any] })
        for (index, (name, predictions, labels, k)) in cases.enumerated() {
            assertClose(classificationMetrics(predictions: predictions, labels: labels, numLabels: k), expected[index], name)
        }
    }

    // MARK: Invariants, no reference needed

    /// --metric-for-best is checked against metricNames, so it must list exactly what an
    /// evaluation reports, for regression, binary and multi-class classification.
    func testMetricNamesAreWhatAnEvaluationReports() {
        for (task, K) in [(Task.regression, 1), (.classification, 2), (.classification, 3)] {
            let examples = (0..<6).map { Example(inputIds: [1], typeIds: [0], target: Float($0 % K), row: $0) }
            let set = ExampleSet(examples: examples, task: task, labels: task == .regression ? [] : (0..<K).map(String.init))
            let outputs = (0..<(6 * K)).map { Float($0 % 5) / 4 }
            XCTAssertEqual(Set(evaluationMetrics(outputs: outputs, set: set, numLabels: K).keys),
                           Set(metricNames(task: task, numLabels: K)), "\(task) with \(K) output(s)")
        }
    }

    func testPerfectRegression() {
        let values: [Float] = [0.5, -1, 2, 2, 3]
        assertClose(regressionMetrics(predictions: values, targets: values),
                    ["rmse": 0, "mae": 0, "pearson": 1, "spearman": 1], "perfect")
    }

    func testHandComputedRegression() {
        // Errors 1, -1, 2, 0: rmse sqrt(6/4), mae 1. Predictions rank like the targets.
        let metrics = regressionMetrics(predictions: [1, 1, 5, 4], targets: [0, 2, 3, 4])
        XCTAssertEqual(metrics["rmse"]!, (6.0 / 4).squareRoot(), accuracy: tolerance)
        XCTAssertEqual(metrics["mae"]!, 1, accuracy: tolerance)
        // Prediction ranks with the tie averaged: 1.5, 1.5, 4, 3; centred: -1, -1, 1.5, 0.5.
        // Target ranks centred: -1.5, -0.5, 0.5, 1.5. Sums: xy 3.5, xx 4.5, yy 5.
        XCTAssertEqual(metrics["spearman"]!, 3.5 / Double(22.5).squareRoot(), accuracy: tolerance)
    }

    func testCorrelationsAreInvariantToPermutationScaleAndShift() {
        var generator = SeededGenerator(seed: 3)
        let targets = (0..<100).map { _ in generator.nextGaussian() }
        let predictions = targets.map { $0 + generator.nextGaussian() }
        let base = regressionMetrics(predictions: predictions, targets: targets)
        let order = Array(0..<100).shuffled(using: &generator)
        let permuted = regressionMetrics(predictions: order.map { predictions[$0] }, targets: order.map { targets[$0] })
        for key in ["rmse", "mae", "pearson", "spearman"] {
            XCTAssertEqual(permuted[key]!, base[key]!, accuracy: 1e-12, key)
        }
        let affine = regressionMetrics(predictions: predictions.map { 3 * $0 + 1 }, targets: targets)
        XCTAssertEqual(affine["pearson"]!, base["pearson"]!, accuracy: 1e-6)
        XCTAssertEqual(affine["spearman"]!, base["spearman"]!, accuracy: 1e-12)
        let flipped = regressionMetrics(predictions: predictions.map { -$0 }, targets: targets)
        XCTAssertEqual(flipped["pearson"]!, -base["pearson"]!, accuracy: 1e-12)
        XCTAssertEqual(flipped["spearman"]!, -base["spearman"]!, accuracy: 1e-12)
        XCTAssertGreaterThan(base["pearson"]!, 0.5)
    }

    func testConstantPredictionsGiveZeroCorrelation() {
        // scipy returns NaN here; we report 0 (see Metrics.swift).
        let metrics = regressionMetrics(predictions: [0.1, 0.1, 0.1], targets: [1, 2, 3])
        XCTAssertEqual(metrics["pearson"], 0)
        XCTAssertEqual(metrics["spearman"], 0)
        XCTAssertEqual(metrics["mae"]!, (0.9 + 1.9 + 2.9) / 3, accuracy: 1e-6)
    }

    func testPerfectAndInvertedClassification() {
        let labels = [0, 1, 1, 0, 1]
        assertClose(classificationMetrics(predictions: labels, labels: labels, numLabels: 2),
                    ["accuracy": 1, "f1": 1, "macro_f1": 1, "mcc": 1], "perfect")
        assertClose(classificationMetrics(predictions: labels.map { 1 - $0 }, labels: labels, numLabels: 2),
                    ["accuracy": 0, "f1": 0, "macro_f1": 0, "mcc": -1], "inverted")
    }

    func testMajorityClassPredictionHasZeroMCC() {
        // The failed-run signature in RECIPES.md: predicting the majority class scores MCC 0.
        let labels = [1, 1, 1, 0, 2, 1]
        let metrics = classificationMetrics(predictions: Array(repeating: 1, count: 6), labels: labels, numLabels: 3)
        XCTAssertEqual(metrics["mcc"], 0)
        XCTAssertEqual(metrics["accuracy"]!, 4.0 / 6, accuracy: tolerance)
        XCTAssertNil(metrics["f1"], "f1 is reported for binary tasks only")
    }

    func testBinaryF1ByHand() {
        // tp 2, fp 1, fn 1: precision 2/3, recall 2/3, F1 2/3; class 0: tp 1, fp 1, fn 1: F1 1/2.
        let metrics = classificationMetrics(predictions: [1, 1, 1, 0, 0], labels: [1, 1, 0, 1, 0], numLabels: 2)
        XCTAssertEqual(metrics["f1"]!, 2.0 / 3, accuracy: tolerance)
        XCTAssertEqual(metrics["macro_f1"]!, (2.0 / 3 + 0.5) / 2, accuracy: tolerance)
        // (tp tn - fp fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn)) = (2 - 1) / sqrt(3 * 3 * 2 * 2).
        XCTAssertEqual(metrics["mcc"]!, 1.0 / 6, accuracy: tolerance)
    }

    // MARK: Python

    /// Feeds `input` as JSON to `script` and decodes its list of metric dictionaries.
    func referenceMetrics(_ script: String, input: [[Any]]) throws -> [[String: Double]] {
        guard let python = referencePython else {
            throw XCTSkip("DPTRAIN_PYTHON is not set; skipping the scipy/numpy reference (invariant tests still run)")
        }
        let data = try runPython(python, script, input: try JSONSerialization.data(withJSONObject: input))
        return try JSONDecoder().decode([[String: Double]].self, from: data)
    }
}
