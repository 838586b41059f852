import DPBackend
import DPModels
import DPTestSupport
import Foundation
import XCTest

/// Whole models against transformers: every hidden state, the pooled vectors, logits, loss and
/// the gradient of every parameter, for the tiny BERT, RoBERTa and ALBERT cases committed under
/// Golden/ and, when scripts/test.sh has produced it, the real all-MiniLM-L6-v2.
final class GoldenModelTests: XCTestCase {
    func testTinyModelsMatchTransformers() throws {
        let cases = try GoldenCase.committed()
        XCTAssertGreaterThanOrEqual(cases.count, 11, "golden fixtures are missing; run scripts/golden.py")
        for golden in cases { try check(golden, threads: 1) }
    }

    func testTinyModelsMatchTransformersOnTwoThreads() throws {
        for golden in try GoldenCase.committed() { try check(golden, threads: 2) }
    }

    func testMiniLMMatchesTransformers() throws {
        guard let golden = try GoldenCase.miniLM() else {
            throw XCTSkip(GoldenCase.miniLMUnset)
        }
        try check(golden, threads: 2)
    }

    private func check(_ golden: GoldenCase, threads: Int) throws {
        for problem in try golden.mismatchesWithTransformers(on: CPUBackend(threads: threads)) { XCTFail(problem) }
    }
}
