// Embeddings: out[b,t,:] = word[wordId] + position[positionId] + type[typeId], the sum that
// BertEmbeddings computes before its LayerNorm. Backward scatters dOut into the three tables
// (parameter gradients: +=), with repeated ids, so that duplicates must add up.

import DPBackend
import DPTestSupport
import XCTest

final class EmbeddingsTests: XCTestCase {
    let B = 2, T = 5, C = 4, V = 7, P = 6, TV = 2

    /// out (B, T, C) from tables (V, C), (P, C), (TV, C).
    func reference(word: [Double], position: [Double], type: [Double],
                   wordIds: [Int32], positionIds: [Int32], typeIds: [Int32]) -> [Double] {
        var out = [Double](repeating: 0, count: B * T * C)
        for bt in 0..<(B * T) {
            for c in 0..<C {
                out[bt * C + c] = word[Int(wordIds[bt]) * C + c] + position[Int(positionIds[bt]) * C + c]
                    + type[Int(typeIds[bt]) * C + c]
            }
        }
        return out
    }

    func testForwardAndBackward() {
        let backend = makeBackend()
        withDeviceScope(backend) { scope in
            // Repeated word ids (3 appears four times), positions in another order, both types.
            let wordIds: [Int32] = [3, 1, 3, 6, 0, 3, 2, 3, 5, 1]
            let positionIds: [Int32] = [0, 1, 2, 3, 4, 5, 4, 3, 1, 0]
            let typeIds: [Int32] = [0, 0, 0, 1, 1, 0, 1, 1, 1, 1]
            let word = randomFloats(V * C, seed: 10), position = randomFloats(P * C, seed: 11)
            let type = randomFloats(TV * C, seed: 12)
            let dOut = randomFloats(B * T * C, seed: 13)

            let dWordTable = scope.floats(randomFloats(V * C, seed: 14))
            let dPositionTable = scope.floats(randomFloats(P * C, seed: 15))
            let dTypeTable = scope.floats(randomFloats(TV * C, seed: 16))
            let prefills = (dWordTable.array, dPositionTable.array, dTypeTable.array)
            let out = scope.floats(garbage(B * T * C))
            let wordIdsD = scope.indices(wordIds), positionIdsD = scope.indices(positionIds)
            let typeIdsD = scope.indices(typeIds)
            let wordD = scope.floats(word), positionD = scope.floats(position)
            let typeD = scope.floats(type), dOutD = scope.floats(dOut)

            backend.embeddingsForward(out: out.pointer, wordIds: wordIdsD.pointer, positionIds: positionIdsD.pointer,
                                      typeIds: typeIdsD.pointer, wordTable: wordD.pointer,
                                      positionTable: positionD.pointer, typeTable: typeD.pointer, B: B, T: T, C: C)
            let expected = reference(word: word.doubles, position: position.doubles, type: type.doubles,
                                     wordIds: wordIds, positionIds: positionIds, typeIds: typeIds)
            assertClose(out.array, expected, .elementwise, "embeddings forward")

            backend.embeddingsBackward(dWordTable: dWordTable.pointer, dPositionTable: dPositionTable.pointer,
                                       dTypeTable: dTypeTable.pointer, dOut: dOutD.pointer,
                                       wordIds: wordIdsD.pointer, positionIds: positionIdsD.pointer,
                                       typeIds: typeIdsD.pointer, B: B, T: T, C: C)
            let w = word.doubles, p = position.doubles, t = type.doubles, g = dOut.doubles
            let dWord = centralDifferenceGradient(at: w) {
                dot(self.reference(word: $0, position: p, type: t, wordIds: wordIds, positionIds: positionIds,
                                   typeIds: typeIds), g)
            }
            let dPosition = centralDifferenceGradient(at: p) {
                dot(self.reference(word: w, position: $0, type: t, wordIds: wordIds, positionIds: positionIds,
                                   typeIds: typeIds), g)
            }
            let dType = centralDifferenceGradient(at: t) {
                dot(self.reference(word: w, position: p, type: $0, wordIds: wordIds, positionIds: positionIds,
                                   typeIds: typeIds), g)
            }
            assertAccumulated(dWordTable.array, prefill: prefills.0, gradient: dWord, .gradient, "dWordTable")
            assertAccumulated(dPositionTable.array, prefill: prefills.1, gradient: dPosition, .gradient, "dPositionTable")
            assertAccumulated(dTypeTable.array, prefill: prefills.2, gradient: dType, .gradient, "dTypeTable")
        }
    }
}
