// Linear layers, y = x W^T + b with PyTorch's (out, in) weight layout, as three sgemm calls.

import COpenBLAS

extension CPUBackend {
    public func matmulForward(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                              weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                              N: Int, C: Int, OC: Int) {
        var beta: Float = 0
        if let bias {
            // Seeding the output with the bias lets sgemm add the product in the same pass.
            for row in 0..<N { (out + row * OC).update(from: bias, count: OC) }
            beta = 1
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasint(N), blasint(OC), blasint(C),
                    1, input, blasint(C), weight, blasint(C), beta, out, blasint(OC))
    }

    public func matmulBackward(dInput: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>,
                               dBias: UnsafeMutablePointer<Float>?, dOut: UnsafePointer<Float>,
                               input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                               N: Int, C: Int, OC: Int) {
        if let dInput {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(N), blasint(C), blasint(OC),
                        1, dOut, blasint(OC), weight, blasint(C), 0, dInput, blasint(C))
        }
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, blasint(OC), blasint(C), blasint(N),
                    1, dOut, blasint(OC), input, blasint(C), 1, dWeight, blasint(C))
        if let dBias {
            for row in 0..<N {
                let dOutRow = dOut + row * OC
                for o in 0..<OC { dBias[o] += dOutRow[o] }
            }
        }
    }
}
