// The CUDA backend: the same ops as the CPU reference, run by libdpcuda.so (the kernels in
// cuda/, built by scripts/build-cuda.sh) on one GPU. The library is opened at run time, so this
// file compiles everywhere and `--backend cuda` on a machine without it is one error line.
//
// Every pointer this backend hands out is device memory; only upload, download and
// sumOfSquares touch the host. Products run through cuBLAS in plain fp32 (no TF32), so results
// match the CPU backend to rounding; in tf32 and bf16 modes the linear layers round their
// operands as the CPU backend does (Precision.swift) and use the tensor cores. A failing CUDA
// call inside an op stops the process: an op has no way to report it, and no later result could
// be trusted. Running out of GPU memory is the user's to fix, so it ends with one line that says
// how; any other failure is a bug here, and crashes with the library's message and a backtrace.

import CDPCUDA
import Foundation

public enum CUDABackendError: Error, CustomStringConvertible {
    /// No candidate path held a loadable library; each path with dlopen's reason.
    case libraryNotFound([(path: String, reason: String)])
    case abiMismatch(path: String, library: Int32, expected: Int32)
    /// The library loaded, but there is no usable GPU (or driver) for the rank.
    case deviceUnavailable(localRank: Int, reason: String)

    public var description: String {
        switch self {
        case .libraryNotFound(let attempts):
            let tried = attempts.map { "\($0.path) (\($0.reason))" }.joined(separator: "; ")
            return "--backend cuda: libdpcuda.so not found; build it with scripts/build-cuda.sh "
                + "and point DPTRAIN_CUDA_LIBRARY at it. Tried: \(tried)"
        case let .abiMismatch(path, library, expected):
            return "--backend cuda: \(path) has C ABI version \(library), this build expects \(expected); "
                + "rebuild it with scripts/build-cuda.sh"
        case let .deviceUnavailable(localRank, reason):
            return "--backend cuda: no usable GPU for local rank \(localRank): \(reason)"
        }
    }
}

public final class CUDABackend: Backend {
    public let name = "cuda"
    public var placement: String { "GPU \(device), \(deviceName)" }
    public let precision: Precision
    public let memoryIsHost = false
    /// `precision` as the library's DPC_PRECISION_*.
    let precisionCode: Int32
    /// The GPU's index among the visible ones, and its name as the driver reports it.
    public let device: Int
    public let deviceName: String
    /// The library file that was opened.
    public let libraryPath: String
    let api: dpc_functions

    /// Where the library is looked for: $DPTRAIN_CUDA_LIBRARY alone when set; otherwise next to
    /// the executable, then scripts/build-cuda.sh's default output under the current directory.
    public static func candidateLibraryPaths(environment: [String: String] = ProcessInfo.processInfo.environment)
        -> [String] {
        if let path = environment["DPTRAIN_CUDA_LIBRARY"], !path.isEmpty { return [path] }
        let executableFolder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        return [executableFolder.appendingPathComponent("libdpcuda.so").path, "artifacts/cuda/libdpcuda.so"]
    }

    /// Opens the library and selects GPU `localRank` modulo the visible GPUs: one rank per GPU,
    /// or several ranks sharing the GPUs when there are more ranks than GPUs.
    public init(localRank: Int = 0, precision: Precision = .fp32,
                libraryPaths: [String] = CUDABackend.candidateLibraryPaths()) throws {
        var attempts: [(path: String, reason: String)] = []
        var loaded: (dpc_functions, String)?
        // The table's fields are non-null function pointers, so it is filled through raw memory.
        let table = UnsafeMutablePointer<dpc_functions>.allocate(capacity: 1)
        defer { table.deallocate() }
        for path in libraryPaths {
            var error = [CChar](repeating: 0, count: 1024)
            if dpc_load(path, table, &error, error.count) == 0 {
                loaded = (table.pointee, path)
                break
            }
            attempts.append((path, String(cString: error)))
        }
        guard let (api, path) = loaded else { throw CUDABackendError.libraryNotFound(attempts) }
        let version = api.dpc_abi_version()
        guard version == DPCUDA_ABI_VERSION else {
            throw CUDABackendError.abiMismatch(path: path, library: version, expected: DPCUDA_ABI_VERSION)
        }
        var deviceName = [CChar](repeating: 0, count: 256)
        var device: Int32 = 0
        guard api.dpc_init(Int32(localRank), &device, &deviceName, deviceName.count) == 0 else {
            throw CUDABackendError.deviceUnavailable(localRank: localRank, reason: Self.lastError(api))
        }
        self.api = api
        self.precision = precision
        precisionCode = switch precision {
        case .fp32: Int32(DPC_PRECISION_FP32)
        case .tf32: Int32(DPC_PRECISION_TF32)
        case .bf16: Int32(DPC_PRECISION_BF16)
        }
        self.device = Int(device)
        self.libraryPath = path
        self.deviceName = String(cString: deviceName)
    }

    private static func lastError(_ api: dpc_functions) -> String {
        api.dpc_last_error().map { String(cString: $0) } ?? "no message"
    }

    /// Stops on a failed call: see the file comment for why an op cannot go on.
    @inline(__always)
    func check(_ status: Int32, _ operation: StaticString) {
        if status != 0 { stop(operation) }
    }

    private func stop(_ operation: StaticString) -> Never {
        let message = Self.lastError(api)
        guard message.contains("cudaErrorMemoryAllocation") else {
            fatalError("CUDA backend, \(operation): \(message)")
        }
        let advice = "use smaller batches (--batch-size, or in training --micro-batch-size to split each rank's "
            + "shard) or shorter sequences (--max-length)"
        FileHandle.standardError.write(Data(
            "Error: GPU \(device) (\(deviceName)) is out of memory in \(operation) (\(message)); \(advice)\n".utf8))
        exit(EXIT_FAILURE)
    }

    /// Waits for every queued kernel, e.g. before reading a host clock.
    public func synchronize() { check(api.dpc_synchronize(), "synchronize") }

    // MARK: Memory

    public func allocate(count: Int) -> UnsafeMutablePointer<Float> {
        var pointer: UnsafeMutableRawPointer?
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        check(api.dpc_malloc(&pointer, bytes), "allocate")
        check(api.dpc_zero(pointer, bytes), "allocate")
        return pointer!.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    public func deallocate(_ buffer: UnsafeMutablePointer<Float>) { check(api.dpc_free(buffer), "deallocate") }

    public func allocateIndices(count: Int) -> UnsafeMutablePointer<Int32> {
        var pointer: UnsafeMutableRawPointer?
        let bytes = max(count, 1) * MemoryLayout<Int32>.stride
        check(api.dpc_malloc(&pointer, bytes), "allocateIndices")
        check(api.dpc_zero(pointer, bytes), "allocateIndices")
        return pointer!.bindMemory(to: Int32.self, capacity: max(count, 1))
    }

    public func deallocateIndices(_ buffer: UnsafeMutablePointer<Int32>) {
        check(api.dpc_free(buffer), "deallocateIndices")
    }

    public func upload(_ destination: UnsafeMutablePointer<Float>, from host: UnsafePointer<Float>, count: Int) {
        check(api.dpc_upload(destination, host, count * MemoryLayout<Float>.stride), "upload")
    }

    public func download(_ destination: UnsafeMutablePointer<Float>, from device: UnsafePointer<Float>, count: Int) {
        check(api.dpc_download(destination, device, count * MemoryLayout<Float>.stride), "download")
    }

    public func allocateStaging(count: Int) -> UnsafeMutablePointer<Float> {
        var pointer: UnsafeMutableRawPointer?
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        check(api.dpc_host_alloc(&pointer, bytes), "allocateStaging")
        let buffer = pointer!.bindMemory(to: Float.self, capacity: max(count, 1))
        buffer.initialize(repeating: 0, count: max(count, 1))
        return buffer
    }

    public func deallocateStaging(_ buffer: UnsafeMutablePointer<Float>) {
        check(api.dpc_host_free(buffer), "deallocateStaging")
    }

    public func startDownload(_ destination: UnsafeMutablePointer<Float>, from device: UnsafePointer<Float>,
                              count: Int) -> PendingDownload {
        var transfer: UnsafeMutableRawPointer?
        check(api.dpc_download_start(destination, device, count * MemoryLayout<Float>.stride, &transfer),
              "startDownload")
        return PendingDownload(handle: OpaquePointer(transfer))
    }

    public func waitForDownload(_ download: PendingDownload) {
        check(api.dpc_download_wait(UnsafeMutableRawPointer(download.handle)), "waitForDownload")
    }

    public func uploadIndices(_ destination: UnsafeMutablePointer<Int32>, from host: UnsafePointer<Int32>, count: Int) {
        check(api.dpc_upload(destination, host, count * MemoryLayout<Int32>.stride), "uploadIndices")
    }

    public func zero(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        check(api.dpc_zero(buffer, count * MemoryLayout<Float>.stride), "zero")
    }

    public func copy(_ destination: UnsafeMutablePointer<Float>, from source: UnsafePointer<Float>, count: Int) {
        check(api.dpc_copy(destination, source, count * MemoryLayout<Float>.stride), "copy")
    }

    public func sumOfSquares(_ buffer: UnsafePointer<Float>, count: Int) -> Double {
        var total = 0.0
        check(api.dpc_sum_of_squares(&total, buffer, Int64(count)), "sumOfSquares")
        return total
    }
}
