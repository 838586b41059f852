// Linear layers, y = x W^T + b with PyTorch's (out, in) weight layout, as sgemm calls.
// The rank's threads each run a single-threaded sgemm on their own block of rows, rather than
// handing OpenBLAS its own pool: OpenBLAS's idle workers spin after every call, and on a
// two-core rank they would steal the core from the loops that run between the products.
// In tf32 and bf16 modes the products read the caller's rounded copies of their operands
// (Precision.swift).

import COpenBLAS

extension CPUBackend {
    /// Rows per thread below which splitting a product costs more than it saves.
    private static let minimumRowsPerChunk = 64

    public func matmulForward(out: UnsafeMutablePointer<Float>, input: Operands, weight: Operands,
                              bias: UnsafePointer<Float>?, N: Int, C: Int, OC: Int) {
        let inputs = values(of: input), weights = values(of: weight)
        parallelRanges(N, minimumPerChunk: Self.minimumRowsPerChunk) { rows in
            var beta: Float = 0
            if let bias {
                // Seeding the output with the bias lets sgemm add the product in the same pass.
                for row in rows { (out + row * OC).update(from: bias, count: OC) }
                beta = 1
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasint(rows.count), blasint(OC), blasint(C),
                        1, inputs + rows.lowerBound * C, blasint(C), weights, blasint(C),
                        beta, out + rows.lowerBound * OC, blasint(OC))
        }
    }

    public func matmulBackward(dInput: UnsafeMutablePointer<Float>?, accumulatesDInput: Bool,
                               dWeight: UnsafeMutablePointer<Float>,
                               dBias: UnsafeMutablePointer<Float>?, dOut: UnsafePointer<Float>,
                               dOutOperands: Operands, input: Operands, weight: Operands,
                               N: Int, C: Int, OC: Int) {
        let dOuts = values(of: dOutOperands), inputs = values(of: input)
        if let dInput {
            let weights = values(of: weight)
            parallelRanges(N, minimumPerChunk: Self.minimumRowsPerChunk) { rows in
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(rows.count), blasint(C), blasint(OC),
                            1, dOuts + rows.lowerBound * OC, blasint(OC), weights, blasint(C),
                            accumulatesDInput ? 1 : 0, dInput + rows.lowerBound * C, blasint(C))
            }
        }
        // dW and dB sum over all N rows, so threads split the output channels instead.
        parallelRanges(OC, minimumPerChunk: Self.minimumRowsPerChunk) { channels in
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, blasint(channels.count), blasint(C), blasint(N),
                        1, dOuts + channels.lowerBound, blasint(OC), inputs, blasint(C),
                        1, dWeight + channels.lowerBound * C, blasint(C))
            if let dBias {
                for row in 0..<N {
                    let dOutRow = dOut + row * OC
                    for o in channels { dBias[o] += dOutRow[o] }
                }
            }
        }
    }
}
