import CMPIShim
import XCTest

/// A single-process MPI job: the collectives must still follow their definitions
/// (allreduce(x) == x * world, broadcast from root 0 is the identity).
final class MPIShimTests: XCTestCase {
    func testCollectivesInASingletonJob() throws {
        XCTAssertEqual(dp_mpi_init(), 0)
        var rank: Int32 = -1, world: Int32 = -1, local: Int32 = -1, localRank: Int32 = -1
        XCTAssertEqual(dp_mpi_topology(&rank, &world, &local, &localRank), 0)
        XCTAssertEqual(rank, 0)
        XCTAssertGreaterThanOrEqual(world, 1)
        XCTAssertGreaterThanOrEqual(local, 1)
        XCTAssertEqual(localRank, 0)

        var values: [Float] = [1.5, -2, 3]
        let expected = values.map { $0 * Float(world) }
        XCTAssertEqual(dp_mpi_allreduce_sum_float(&values, values.count), 0)
        XCTAssertEqual(values, expected)

        var bytes: [UInt8] = [7, 8, 9]
        XCTAssertEqual(dp_mpi_broadcast(&bytes, bytes.count, 0), 0)
        XCTAssertEqual(bytes, [7, 8, 9])
        XCTAssertEqual(dp_mpi_barrier(), 0)
    }
}
