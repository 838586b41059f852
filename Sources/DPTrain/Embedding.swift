// Sentence embeddings from an encoder, as sentence-transformers computes them: the last hidden
// state pooled over the real tokens (mean) or taken at the first token (cls), then optionally
// scaled to unit length. Texts are sorted by length and batched, so that batches carry little
// padding; the output keeps the input order.

import DPModels
import DPTokenizers
import Foundation

public enum EmbeddingPooling: String, Sendable, CaseIterable {
    case mean
    case cls

    public var head: Pooling { self == .mean ? .mean : .firstToken }
}

/// One embedding (C floats) per text. `model` must have been built with `pooling.head`.
public func embed(_ texts: [String], model: EncoderModel, tokenizer: Tokenizer, maxLength: Int, batchSize: Int,
                  normalize: Bool) -> [[Float]] {
    var encoded = [[Int32]](repeating: [], count: texts.count)
    encoded.withUnsafeMutableBufferPointer { output in
        let destination = output
        DispatchQueue.concurrentPerform(iterations: texts.count) { index in
            destination[index] = tokenizer.encode(texts[index], maxLength: maxLength).ids
        }
    }
    let byLength = texts.indices.sorted { encoded[$0].count < encoded[$1].count }
    let C = model.layout.C
    var embeddings = [[Float]](repeating: [], count: texts.count)
    for start in stride(from: 0, to: byLength.count, by: batchSize) {
        let indices = Array(byLength[start..<min(start + batchSize, byLength.count)])
        let batch = EncoderBatch(sequences: indices.map { encoded[$0] }, modelType: model.layout.config.modelType,
                                 padTokenId: model.layout.config.padTokenId)
        model.forward(batch, dropout: nil)
        let features = model.pooledFeatures()  // (B, C)
        for (b, index) in indices.enumerated() {
            var vector = Array(features[(b * C)..<((b + 1) * C)])
            if normalize {
                // torch.nn.functional.normalize: x / max(||x||, 1e-12)
                let norm = max(vector.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot(), 1e-12)
                vector = vector.map { Float(Double($0) / norm) }
            }
            embeddings[index] = vector
        }
    }
    return embeddings
}
