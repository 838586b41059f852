import XCTest

final class DPDataTestsPlaceholder: XCTestCase {}
