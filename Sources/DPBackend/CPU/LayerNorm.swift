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
                let mu = sumOfVectors(in: 0..<C) { c, lanes in load(x, c, lanes) } / Float(C)
                let squares = sumOfVectors(in: 0..<C) { c, lanes in
                    let centered = load(x, c, lanes) - mu
                    return centered * centered
                }
                let inverseStd = 1 / (squares / Float(C) + epsilon).squareRoot()
                let y = out + row * C
                forEachVector(in: 0..<C) { c, lanes in
                    let normalised = (load(x, c, lanes) - mu) * inverseStd
                    store(normalised * load(weight, c, lanes) + load(bias, c, lanes), y, c, lanes)
                }
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
                // Padded lanes of dy load as 0, so g and g * xhat add nothing there.
                var sumsG = Float8(), sumsGXhat = Float8()
                forEachVector(in: 0..<C) { c, lanes in
                    let xhat = (load(x, c, lanes) - mu) * inverseStd
                    let dyc = load(dy, c, lanes)
                    let g = dyc * load(weight, c, lanes)
                    sumsG += g
                    sumsGXhat += g * xhat
                    store(load(dBiasPart, c, lanes) + dyc, dBiasPart, c, lanes)
                    store(load(dWeightPart, c, lanes) + dyc * xhat, dWeightPart, c, lanes)
                }
                let meanG = sumsG.sum() / Float(C), meanGXhat = sumsGXhat.sum() / Float(C)
                forEachVector(in: 0..<C) { c, lanes in
                    let xhat = (load(x, c, lanes) - mu) * inverseStd
                    let g = load(dy, c, lanes) * load(weight, c, lanes)
                    store(inverseStd * (g - meanG - xhat * meanGXhat), dx, c, lanes)
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
