// `--precision fp32|tf32|bf16`: what the encoder's products compute in. The CPU backend
// defines each mode and the CUDA backend must match it:
//   - the operands of every linear-layer product, forward and backward (input and weight; dOut
//     and weight; dOut and input), and of attention's products (Q and K; the dropped
//     probabilities and V; dOut and V; the dropped probabilities and dOut; dScores with K and
//     with Q) are rounded to the format's mantissa, to nearest, ties to even;
//   - the products of those rounded values are exact in fp32 and are summed in fp32;
//   - outputs, bias gradients, the gradient buffer, master weights, AdamW state and every other
//     op (LayerNorm, softmax and its backward, GELU, the losses) stay fp32.
// Both backends then round identical inputs identically, so they differ only by the order of
// the fp32 sums, as in fp32 mode. Where a value is rounded is the model's choice, not the
// products' (Backend.Operands): once, by the op that writes it where it can, and kept for
// every product that reads it. This is stricter than PyTorch's bf16 autocast, which also
// keeps the products' outputs in bf16.

public enum Precision: String, Sendable, CaseIterable {
    case fp32
    /// TF32 tensor cores: 10 mantissa bits.
    case tf32
    /// bfloat16 operands: 7 mantissa bits.
    case bf16

    /// Mantissa bits an operand keeps (fp32 keeps all 23).
    public var mantissaBits: Int {
        switch self {
        case .fp32: return 23
        case .tf32: return 10
        case .bf16: return 7
        }
    }
}

/// `value` rounded to `mantissaBits` mantissa bits, to nearest with ties to even, as CUDA's
/// __float2bfloat16_rn does for bf16. A value that rounds past the largest finite number becomes
/// infinity; NaN stays NaN.
@inline(__always)
public func roundedMantissa(_ value: Float, keeping mantissaBits: Int) -> Float {
    let dropped = UInt32(23 - mantissaBits)
    guard dropped > 0, !value.isNaN else { return value }
    let bits = value.bitPattern
    let lowestKept = (bits >> dropped) & 1
    let half = (UInt32(1) << (dropped - 1)) - 1 + lowestKept
    return Float(bitPattern: (bits &+ half) & ~((UInt32(1) << dropped) - 1))
}
