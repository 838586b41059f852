// BertEmbeddings / RobertaEmbeddings / AlbertEmbeddings before their LayerNorm:
// word + position + token type lookups, summed. Position ids come from the model, which knows
// RoBERTa's padding-aware numbering.

extension CPUBackend {
    public func embeddingsForward(out: UnsafeMutablePointer<Float>, wordIds: UnsafePointer<Int32>,
                                  positionIds: UnsafePointer<Int32>, typeIds: UnsafePointer<Int32>,
                                  wordTable: UnsafePointer<Float>, positionTable: UnsafePointer<Float>,
                                  typeTable: UnsafePointer<Float>, B: Int, T: Int, C: Int) {
        parallelRanges(B * T, minimumPerChunk: 64) { tokens in
            for token in tokens {
                let word = wordTable + Int(wordIds[token]) * C
                let position = positionTable + Int(positionIds[token]) * C
                let type = typeTable + Int(typeIds[token]) * C
                let row = out + token * C
                for c in 0..<C { row[c] = word[c] + position[c] + type[c] }
            }
        }
    }

    public func embeddingsBackward(dWordTable: UnsafeMutablePointer<Float>, dPositionTable: UnsafeMutablePointer<Float>,
                                   dTypeTable: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
                                   wordIds: UnsafePointer<Int32>, positionIds: UnsafePointer<Int32>,
                                   typeIds: UnsafePointer<Int32>, B: Int, T: Int, C: Int) {
        // Serial on purpose: two tokens may share a row of a table, and the scatter is cheap.
        for token in 0..<(B * T) {
            let dRow = dOut + token * C
            let word = dWordTable + Int(wordIds[token]) * C
            let position = dPositionTable + Int(positionIds[token]) * C
            let type = dTypeTable + Int(typeIds[token]) * C
            for c in 0..<C {
                word[c] += dRow[c]
                position[c] += dRow[c]
                type[c] += dRow[c]
            }
        }
    }
}
