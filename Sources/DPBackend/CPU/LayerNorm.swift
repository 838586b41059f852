// torch.nn.LayerNorm over the last dimension: biased variance, epsilon inside the square root.

import Dispatch

extension CPUBackend {
    public func layerNormForward(out: UnsafeMutablePointer<Float>, operands: UnsafeMutableRawPointer?,
                                 mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                                 input: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                                 N: Int, C: Int, epsilon: Float) {
        // The reference rounds the operands in a pass of their own, after the output.
        defer { if let operands { _ = roundOperands(out: operands, values: out, count: N * C) } }
        parallelRanges(N, minimumPerChunk: 16) { rows in
            for row in rows {
                let x = input + row * C
                var sum: Float = 0
                for c in 0..<C { sum += x[c] }
                let mu = sum / Float(C)
                var squares: Float = 0
                for c in 0..<C {
                    let centered = x[c] - mu
                    squares += centered * centered
                }
                let inverseStd = 1 / (squares / Float(C) + epsilon).squareRoot()
                let y = out + row * C
                for c in 0..<C { y[c] = (x[c] - mu) * inverseStd * weight[c] + bias[c] }
                mean[row] = mu
                rstd[row] = inverseStd
            }
        }
    }

    public func layerNormBackward(dInput: UnsafeMutablePointer<Float>, branch: DroppedBranch?,
                                  dWeight: UnsafeMutablePointer<Float>, dBias: UnsafeMutablePointer<Float>,
                                  dOut: UnsafePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                  mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, B: Int, T: Int, C: Int) {
        let N = B * T
        let branchMask = branch.flatMap { $0.dropout.isActive ? DropoutMask($0.dropout) : nil }
        defer {
            if let branch, let operands = branch.operands {
                _ = roundOperands(out: operands, values: branch.dInput, count: N * C)
            }
        }
        // Each thread sums its rows' dWeight and dBias privately; the partial sums are added
        // in a fixed order afterwards, so the result does not depend on scheduling.
        let chunks = min(threads, max(1, N / 16))
        let partials = allocate(count: chunks * 2 * C) // (chunks, 2, C)
        defer { deallocate(partials) }
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            let dWeightPart = partials + chunk * 2 * C, dBiasPart = dWeightPart + C
            for row in (N * chunk / chunks)..<(N * (chunk + 1) / chunks) {
                let x = input + row * C
                let dy = dOut + row * C
                let dx = dInput + row * C
                let mu = mean[row], inverseStd = rstd[row]
                // dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), with g = dy * weight.
                var meanG: Float = 0, meanGXhat: Float = 0
                for c in 0..<C {
                    let xhat = (x[c] - mu) * inverseStd
                    let g = dy[c] * weight[c]
                    meanG += g
                    meanGXhat += g * xhat
                    dBiasPart[c] += dy[c]
                    dWeightPart[c] += dy[c] * xhat
                }
                meanG /= Float(C)
                meanGXhat /= Float(C)
                for c in 0..<C {
                    let xhat = (x[c] - mu) * inverseStd
                    dx[c] = inverseStd * (dy[c] * weight[c] - meanG - xhat * meanGXhat)
                }
                guard let branch else { continue }
                let dDropped = branch.dInput + row * C
                if let branchMask {
                    let key = branchMask.exampleKey(branch.dropout.exampleIndices[row / T])
                    branchMask.apply(dDropped, dx, range: 0..<C, base: UInt64((row % T) * C), exampleKey: key)
                } else {
                    dDropped.update(from: dx, count: C)
                }
            }
        }
        for chunk in 0..<chunks {
            let dWeightPart = partials + chunk * 2 * C, dBiasPart = dWeightPart + C
            for c in 0..<C {
                dWeight[c] += dWeightPart[c]
                dBias[c] += dBiasPart[c]
            }
        }
    }
}
