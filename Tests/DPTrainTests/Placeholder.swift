import XCTest

final class DPTrainTestsPlaceholder: XCTestCase {}
