// The ranks of a data-parallel job and the few collectives the trainer needs. Two
// implementations: MPI through the C shim, and a single process that needs no launcher.
// Every collective is called by every rank in the same order; a rank that skips one hangs the
// others, which is why the trainer makes every control decision (skip a step, stop, save) from
// values that were themselves allreduced.

import CMPIShim
import Foundation

public enum CommunicatorError: Error, CustomStringConvertible {
    case mpi(operation: String, code: Int32)

    public var description: String {
        switch self {
        case .mpi(let operation, let code):
            return "MPI \(operation) failed with error code \(code); another rank probably died"
        }
    }
}

public protocol Communicator: AnyObject {
    var rank: Int { get }
    var worldSize: Int { get }
    /// Ranks on this node: threads per rank default to the node's cores divided by this.
    var localSize: Int { get }
    /// This rank's index among the ranks on its node: it picks the rank's GPU.
    var localRank: Int { get }
    /// In-place elementwise sum over all ranks.
    func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws
    func allreduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) throws
    /// Overwrites `bytes` bytes of `buffer` on every rank with those of `root`.
    func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int) throws
    func barrier() throws
    /// Ends every rank of the job, not just this one.
    func abort(exitCode: Int32) -> Never
    /// Called once at the end of a clean run.
    func finish()
}

extension Communicator {
    public var isRoot: Bool { rank == 0 }
}

public final class SingleProcessCommunicator: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var worldSize: Int { 1 }
    public var localSize: Int { 1 }
    public var localRank: Int { 0 }
    public func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {}
    public func allreduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) throws {}
    public func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int) throws {}
    public func barrier() throws {}
    public func abort(exitCode: Int32) -> Never { exit(exitCode) }
    public func finish() {}
}

public final class MPICommunicator: Communicator {
    public let rank: Int
    public let worldSize: Int
    public let localSize: Int
    public let localRank: Int
    private var watchdog: CollectiveWatchdog?

    /// `collectiveTimeout` (seconds) bounds every collective; nil waits forever, as MPI does.
    public init(collectiveTimeout: Double? = nil) throws {
        try Self.check("MPI_Init", dp_mpi_init())
        var rank: Int32 = 0, world: Int32 = 0, localSize: Int32 = 0, localRank: Int32 = 0
        try Self.check("topology", dp_mpi_topology(&rank, &world, &localSize, &localRank))
        self.rank = Int(rank)
        self.worldSize = Int(world)
        self.localSize = Int(localSize)
        self.localRank = Int(localRank)
        if let collectiveTimeout {
            let rank = self.rank
            watchdog = CollectiveWatchdog(timeout: collectiveTimeout) { operation in
                FileHandle.standardError.write(Data(("rank \(rank): Error: MPI \(operation) did not complete within "
                    + "\(collectiveTimeout) s (--collective-timeout); another rank stalled or died; ending the job\n").utf8))
                dp_mpi_abort(1)
                _exit(1)
            }
        }
    }

    private func guarded(_ operation: String, _ body: () -> Int32) throws {
        let code = watchdog.map { $0.guarding(operation, body) } ?? body()
        try Self.check(operation, code)
    }

    private static func check(_ operation: String, _ code: Int32) throws {
        guard code == 0 else { throw CommunicatorError.mpi(operation: operation, code: code) }
    }

    public func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {
        try guarded("allreduce") { dp_mpi_allreduce_sum_float(buffer, count) }
    }

    public func allreduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) throws {
        try guarded("allreduce") { dp_mpi_allreduce_sum_double(buffer, count) }
    }

    public func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int) throws {
        try guarded("broadcast") { dp_mpi_broadcast(buffer, bytes, Int32(root)) }
    }

    public func barrier() throws { try guarded("barrier") { dp_mpi_barrier() } }

    public func abort(exitCode: Int32) -> Never {
        dp_mpi_abort(exitCode)
        exit(exitCode)
    }

    public func finish() { _ = dp_mpi_finalize() }
}
