// `--backend cpu|cuda` and `--precision fp32|tf32|bf16`, shared by the subcommands that run a
// model. The CUDA backend opens libdpcuda.so at run time; without the library or a GPU, making
// it fails with one line that says which (see CUDABackendError).

import ArgumentParser
import DPBackend

extension BackendKind: ExpressibleByArgument {}
extension Precision: ExpressibleByArgument {}

struct BackendOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Where the model runs: cpu (OpenBLAS) or cuda (libdpcuda.so, "
        + "found through DPTRAIN_CUDA_LIBRARY; build it with scripts/build-cuda.sh).", valueName: "cpu|cuda"))
    var backend: BackendKind = .cpu
    @Option(name: .long, help: ArgumentHelp("What the products (linear layers and attention) multiply in: fp32, tf32 "
        + "(10 mantissa bits) or bf16 (7); sums, weights, optimizer state and every other op stay fp32.", valueName: "fp32|tf32|bf16"))
    var precision: Precision = .fp32

    /// The backend of a single-process command: `threads` for the CPU, the first GPU for CUDA.
    func makeBackend(threads: Int) throws -> any Backend {
        try backend.make(threads: threads, localRank: 0, precision: precision)
    }
}
