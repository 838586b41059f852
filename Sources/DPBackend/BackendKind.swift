// `--backend cpu|cuda` for every command that runs a model.

public enum BackendKind: String, Sendable, CaseIterable {
    case cpu
    case cuda

    /// The backend of one rank. `threads` splits the CPU backend's ops; `localRank` picks the
    /// GPU (modulo the visible GPUs, so that ranks share a GPU when there are more ranks than
    /// GPUs). Making a CUDA backend without the library or a GPU throws one CUDABackendError line.
    public func make(threads: Int, localRank: Int, precision: Precision) throws -> any Backend {
        switch self {
        case .cpu: return CPUBackend(threads: threads, precision: precision)
        case .cuda: return try CUDABackend(localRank: localRank, precision: precision)
        }
    }
}
