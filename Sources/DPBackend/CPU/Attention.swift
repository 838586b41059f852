// BertSelfAttention's core (and RoBERTa's and ALBERT's): per head, softmax(Q K^T / sqrt(HS))
// with padded keys excluded, dropout on the probabilities, then times V. Q, K and V are read
// in place from the fused (B, T, 3C) projection through sgemm's leading dimensions, so no
// head is ever copied out. In tf32 and bf16 modes the products read rounded operands: the
// caller's Q, K, V and dOut, as the linear layers do, and the dropped probabilities and dScores
// rounded here; the softmax and its backward stay fp32.

import COpenBLAS
import Dispatch
import Foundation

extension CPUBackend {
    public func attentionForward(out: UnsafeMutablePointer<Float>, probabilities: UnsafeMutablePointer<Float>,
                                 qkv: Operands, attentionMask: UnsafePointer<Float>,
                                 dropout: DropoutSite, B: Int, T: Int, C: Int, NH: Int) {
        let HS = C / NH
        let scale = 1 / Float(HS).squareRoot()
        let mask = dropout.isActive ? DropoutMask(dropout) : nil
        let projection = values(of: qkv)
        forEachHead(B: B, NH: NH, scratchCount: T * T) { b, h, weightScratch in // weightScratch: (T, T)
            let q = projection + b * T * 3 * C + h * HS
            let k = q + C, v = q + 2 * C
            let p = probabilities + (b * NH + h) * T * T // (T, T)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasint(T), blasint(T), blasint(HS),
                        scale, q, blasint(3 * C), k, blasint(3 * C), 0, p, blasint(T))
            maskedSoftmax(p, keyMask: attentionMask + b * T, T: T)
            let exampleKey = mask?.exampleKey(dropout.exampleIndices[b]) ?? 0
            let weights = attentionWeights(weightScratch, probabilities: p, mask, exampleKey: exampleKey, head: h, T: T)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(T), blasint(HS), blasint(T),
                        1, weights, blasint(T), v, blasint(3 * C), 0, out + b * T * C + h * HS, blasint(C))
        }
    }

    public func attentionBackward(dQKV: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>,
                                  dOut: Operands, qkv: Operands, probabilities: UnsafePointer<Float>,
                                  dropout: DropoutSite, B: Int, T: Int, C: Int, NH: Int) {
        let HS = C / NH
        let scale = 1 / Float(HS).squareRoot()
        let mask = dropout.isActive ? DropoutMask(dropout) : nil
        let projection = values(of: qkv), upstream = values(of: dOut)
        forEachHead(B: B, NH: NH, scratchCount: T * T) { b, h, weightScratch in // weightScratch: (T, T)
            let q = projection + b * T * 3 * C + h * HS
            let k = q + C, v = q + 2 * C
            let dq = dQKV + b * T * 3 * C + h * HS
            let dk = dq + C, dv = dq + 2 * C
            let dy = upstream + b * T * C + h * HS
            let p = probabilities + (b * NH + h) * T * T // (T, T)
            let dp = scratch + (b * NH + h) * T * T      // (T, T)
            let exampleKey = mask?.exampleKey(dropout.exampleIndices[b]) ?? 0
            // dP_dropped = dY V^T comes first, so that one pass over the mask drops both P, for
            // dV = P_dropped^T dY, and dP.
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasint(T), blasint(T), blasint(HS),
                        1, dy, blasint(C), v, blasint(3 * C), 0, dp, blasint(T))
            let weights = attentionWeights(weightScratch, probabilities: p, mask, exampleKey: exampleKey, head: h, T: T,
                                           alsoDropping: dp)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, blasint(T), blasint(HS), blasint(T),
                        1, weights, blasint(T), dy, blasint(C), 0, dv, blasint(3 * C))
            softmaxBackwardInPlace(dp, probabilities: p, T: T)
            roundOperand(dp, dp, count: T * T)
            // dQ = scale dS K; dK = scale dS^T Q
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(T), blasint(HS), blasint(T),
                        scale, dp, blasint(T), k, blasint(3 * C), 0, dq, blasint(3 * C))
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, blasint(T), blasint(HS), blasint(T),
                        scale, dp, blasint(T), q, blasint(3 * C), 0, dk, blasint(3 * C))
        }
    }

    /// What weights the values of one head: the probabilities `p` (T, T) themselves in fp32
    /// without dropout, else their dropped and rounded copy in `scratch` (T, T). `alsoDropping`
    /// (T, T), when given, is dropped in place by the same mask.
    private func attentionWeights(_ scratch: UnsafeMutablePointer<Float>, probabilities p: UnsafePointer<Float>,
                                  _ mask: DropoutMask?, exampleKey: UInt64, head: Int, T: Int,
                                  alsoDropping other: UnsafeMutablePointer<Float>? = nil) -> UnsafePointer<Float> {
        guard mask != nil || precision != .fp32 else { return p }
        if let mask {
            applyAttentionDropout(scratch, p, mask, exampleKey: exampleKey, head: head, T: T, alsoDropping: other)
            roundOperand(scratch, scratch, count: T * T)
        } else {
            roundOperand(scratch, p, count: T * T)
        }
        return UnsafePointer(scratch)
    }

    /// Runs `body(b, h, scratch)` for every (example, head) pair, the pairs split across the
    /// rank's threads. Each product is small, so one whole head per thread beats splitting
    /// every product.
    private func forEachHead(B: Int, NH: Int, scratchCount: Int,
                             _ body: (Int, Int, UnsafeMutablePointer<Float>) -> Void) {
        let pairs = B * NH
        let workers = min(threads, pairs)
        let scratch = allocate(count: scratchCount * workers)
        defer { deallocate(scratch) }
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            for pair in (pairs * worker / workers)..<(pairs * (worker + 1) / workers) {
                body(pair / NH, pair % NH, scratch + worker * scratchCount)
            }
        }
    }

    /// Row-wise softmax of (T, T) scores where padded keys get probability exactly 0, as
    /// transformers' additive finfo.min mask gives after exp underflows.
    private func maskedSoftmax(_ scores: UnsafeMutablePointer<Float>, keyMask: UnsafePointer<Float>, T: Int) {
        for row in 0..<T {
            let s = scores + row * T
            var maxima = Float8(repeating: -.infinity)
            var key = 0
            while key < T {
                let lanes = min(8, T - key)
                var candidate = load(s, key, lanes)
                candidate.replace(with: -.infinity, where: load(keyMask, key, lanes) .== 0)
                maxima.replace(with: candidate, where: candidate .> maxima)
                key += 8
            }
            let maximum = maxima.max()
            var sums = Float8()
            key = 0
            while key < T {
                let lanes = min(8, T - key)
                let e = exp8(load(s, key, lanes) - maximum) * load(keyMask, key, lanes)
                store(e, s, key, lanes)
                sums += e // padded lanes carry a zero mask
                key += 8
            }
            let sum = sums.sum()
            let inverse = sum > 0 ? 1 / sum : 0
            key = 0
            while key < T {
                let lanes = min(8, T - key)
                store(load(s, key, lanes) * inverse, s, key, lanes)
                key += 8
            }
        }
    }

    /// dS = P * (dP - sum_k dP * P), in place over dP.
    private func softmaxBackwardInPlace(_ dp: UnsafeMutablePointer<Float>, probabilities p: UnsafePointer<Float>, T: Int) {
        for row in 0..<T {
            let g = dp + row * T, y = p + row * T
            var dots = Float8()
            var key = 0
            while key + 8 <= T {
                dots += g.load8(key) * y.load8(key)
                key += 8
            }
            var dot = dots.sum()
            while key < T {
                dot += g[key] * y[key]
                key += 1
            }
            for key in 0..<T { g[key] = y[key] * (g[key] - dot) }
        }
    }

    /// The attention-probability mask is keyed by (head, query, key) rather than by flat offset,
    /// so it stays the same whatever length the batch was padded to.
    private func applyAttentionDropout(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
                                       _ mask: DropoutMask, exampleKey: UInt64, head: Int, T: Int,
                                       alsoDropping other: UnsafeMutablePointer<Float>?) {
        for query in 0..<T {
            let base = (UInt64(head) << 42) | (UInt64(query) << 21)
            mask.apply(out + query * T, input + query * T, range: 0..<T, base: base, exampleKey: exampleKey,
                       alsoDropping: other.map { $0 + query * T })
        }
    }
}
