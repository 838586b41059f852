// `--backend cpu|cuda`, shared by the subcommands that run a model. The CUDA backend opens
// libdpcuda.so at run time; without the library or a GPU, making it fails with one line that
// says which (see CUDABackendError).

import ArgumentParser
import DPBackend

enum BackendKind: String, ExpressibleByArgument, CaseIterable {
    case cpu
    case cuda
}

struct BackendOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Where the model runs: cpu (OpenBLAS) or cuda (libdpcuda.so, "
        + "found through DPTRAIN_CUDA_LIBRARY; build it with scripts/build-cuda.sh).", valueName: "cpu|cuda"))
    var backend: BackendKind = .cpu

    /// The backend for one rank: `threads` for the CPU, `device` (the local rank under MPI) for CUDA.
    func makeBackend(threads: Int, device: Int = 0) throws -> any Backend {
        switch backend {
        case .cpu: return CPUBackend(threads: threads)
        case .cuda: return try CUDABackend(device: device)
        }
    }
}
