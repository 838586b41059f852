// Sentence vectors from token states: the first token (BERT's [CLS], RoBERTa's <s>) and the
// masked mean of sentence-transformers, which ignores padding.

extension CPUBackend {
    public func firstTokenForward(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                                  B: Int, T: Int, C: Int) {
        for b in 0..<B { (out + b * C).update(from: input + b * T * C, count: C) }
    }

    public func firstTokenBackward(dInput: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
                                   B: Int, T: Int, C: Int) {
        dInput.update(repeating: 0, count: B * T * C)
        for b in 0..<B { (dInput + b * T * C).update(from: dOut + b * C, count: C) }
    }

    public func meanPoolForward(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                                attentionMask: UnsafePointer<Float>, B: Int, T: Int, C: Int) {
        for b in 0..<B {
            let y = out + b * C
            y.update(repeating: 0, count: C)
            var tokens: Float = 0
            for t in 0..<T where attentionMask[b * T + t] != 0 {
                let x = input + (b * T + t) * C
                for c in 0..<C { y[c] += x[c] }
                tokens += 1
            }
            // sentence-transformers clamps the token count at 1e-9 to survive empty rows.
            let inverse = 1 / max(tokens, 1e-9)
            for c in 0..<C { y[c] *= inverse }
        }
    }

    public func meanPoolBackward(dInput: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
                                 attentionMask: UnsafePointer<Float>, B: Int, T: Int, C: Int) {
        for b in 0..<B {
            var tokens: Float = 0
            for t in 0..<T where attentionMask[b * T + t] != 0 { tokens += 1 }
            let inverse = 1 / max(tokens, 1e-9)
            let dy = dOut + b * C
            for t in 0..<T {
                let dx = dInput + (b * T + t) * C
                if attentionMask[b * T + t] != 0 {
                    for c in 0..<C { dx[c] = dy[c] * inverse }
                } else {
                    dx.update(repeating: 0, count: C)
                }
            }
        }
    }
}
