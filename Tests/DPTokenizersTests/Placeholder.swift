import XCTest

final class DPTokenizersTestsPlaceholder: XCTestCase {}
