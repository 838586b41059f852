// How this process was started, and the self-launch behind `--ranks N`: without a launcher,
// N > 1 replaces this process with `mpirun -np N` running the same command line, so that
// signals (Slurm's, Ctrl-C) and the exit status pass straight through mpirun.

import ArgumentParser
import Foundation

enum Launch {
    case singleProcess
    case mpi
    case relaunch(executable: String, arguments: [String])

    /// Variables that Open MPI's mpirun, PMIx (srun --mpi=pmix) and MPICH-style launchers set.
    static let launcherVariables = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"]

    static func current(requestedRanks: Int?) throws -> Launch {
        let environment = ProcessInfo.processInfo.environment
        if launcherVariables.contains(where: { environment[$0] != nil }) { return .mpi }
        guard let ranks = requestedRanks, ranks > 1 else { return .singleProcess }
        guard let mpirun = findOnPath("mpirun", environment["PATH"] ?? "") else {
            throw ValidationError("--ranks \(ranks) needs mpirun to start the ranks, and none is on PATH "
                + "(Debian: apt-get install openmpi-bin); or launch with mpirun -np \(ranks) or srun yourself")
        }
        let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var arguments = [mpirun, "-np", String(ranks)]
        // Each rank runs several threads; Open MPI would otherwise pin each rank to one core.
        arguments += ["--bind-to", "none"]
        if ranks > ProcessInfo.processInfo.activeProcessorCount { arguments.append("--oversubscribe") }
        if geteuid() == 0 { arguments.append("--allow-run-as-root") }
        return .relaunch(executable: mpirun, arguments: arguments + [me] + CommandLine.arguments.dropFirst())
    }

    static func exec(_ executable: String, _ arguments: [String]) throws -> Never {
        print("starting \(arguments.count > 2 ? arguments[2] : "?") ranks: \(arguments.joined(separator: " "))")
        fflush(stdout)
        let cArguments = arguments.map { strdup($0) } + [nil]
        execv(executable, cArguments)
        throw ValidationError("could not start \(executable): \(String(cString: strerror(errno)))")
    }

    private static func findOnPath(_ name: String, _ path: String) -> String? {
        path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}
