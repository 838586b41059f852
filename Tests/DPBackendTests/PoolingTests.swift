// Pooling over tokens: the first token (BertPooler reads [CLS]) and the mean over the tokens
// whose attention mask is 1 (sentence-transformers' mean pooling). Both backwards assign the
// whole (B, T, C) dInput, zeros included.

import DPBackend
import DPTestSupport
import XCTest

final class PoolingTests: XCTestCase {
    let B = 3, T = 5, C = 4
    /// Example 0 is full, example 1 has three tokens, example 2 only one.
    let mask: [Float] = [1, 1, 1, 1, 1,
                         1, 1, 1, 0, 0,
                         1, 0, 0, 0, 0]

    func firstTokenReference(_ input: [Double]) -> [Double] {
        (0..<(B * C)).map { input[($0 / C) * T * C + $0 % C] }
    }

    func meanPoolReference(_ input: [Double]) -> [Double] {
        var out = [Double](repeating: 0, count: B * C)
        for b in 0..<B {
            let tokens = (0..<T).filter { mask[b * T + $0] == 1 }
            for c in 0..<C {
                out[b * C + c] = tokens.reduce(0) { $0 + input[(b * T + $1) * C + c] } / Double(tokens.count)
            }
        }
        return out
    }

    func testFirstTokenForwardAndBackward() {
        let backend = makeBackend()
        withDeviceScope(backend) { scope in
            let input = randomFloats(B * T * C, seed: 50), dOut = randomFloats(B * C, seed: 51)
            let inputD = scope.floats(input), dOutD = scope.floats(dOut)
            let out = scope.floats(garbage(B * C)), dInput = scope.floats(garbage(B * T * C))

            backend.firstTokenForward(out: out.pointer, input: inputD.pointer, B: B, T: T, C: C)
            let x = input.doubles, g = dOut.doubles
            assertClose(out.array, firstTokenReference(x), .elementwise, "firstToken forward")

            backend.firstTokenBackward(dInput: dInput.pointer, dOut: dOutD.pointer, B: B, T: T, C: C)
            let expected = centralDifferenceGradient(at: x) { dot(self.firstTokenReference($0), g) }
            assertClose(dInput.array, expected, .gradient, "firstToken dInput (assigned over garbage, zeros included)")
        }
    }

    func testMeanPoolForwardAndBackward() {
        let backend = makeBackend()
        withDeviceScope(backend) { scope in
            let input = randomFloats(B * T * C, seed: 52), dOut = randomFloats(B * C, seed: 53)
            let inputD = scope.floats(input), dOutD = scope.floats(dOut)
            let maskD = scope.floats(mask)
            let out = scope.floats(garbage(B * C)), dInput = scope.floats(garbage(B * T * C))

            backend.meanPoolForward(out: out.pointer, input: inputD.pointer, attentionMask: maskD.pointer, B: B, T: T, C: C)
            let x = input.doubles, g = dOut.doubles
            assertClose(out.array, meanPoolReference(x), .reduction, "meanPool forward")

            backend.meanPoolBackward(dInput: dInput.pointer, dOut: dOutD.pointer, attentionMask: maskD.pointer,
                                     B: B, T: T, C: C)
            let expected = centralDifferenceGradient(at: x) { dot(self.meanPoolReference($0), g) }
            assertClose(dInput.array, expected, .gradient, "meanPool dInput (assigned over garbage, padding included)")
        }
    }
}
