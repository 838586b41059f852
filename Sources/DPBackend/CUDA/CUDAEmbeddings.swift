// BertEmbeddings' sum of the three tables, on the GPU (cuda/kernels/embeddings.cu).

import CDPCUDA

extension CUDABackend {
    public func embeddingsForward(out: UnsafeMutablePointer<Float>, wordIds: UnsafePointer<Int32>,
                                  positionIds: UnsafePointer<Int32>, typeIds: UnsafePointer<Int32>,
                                  wordTable: UnsafePointer<Float>, positionTable: UnsafePointer<Float>,
                                  typeTable: UnsafePointer<Float>, B: Int, T: Int, C: Int) {
        check(api.dpc_embeddings_forward(out, wordIds, positionIds, typeIds, wordTable, positionTable, typeTable,
                                         Int32(B), Int32(T), Int32(C)), "embeddingsForward")
    }

    public func embeddingsBackward(dWordTable: UnsafeMutablePointer<Float>, dPositionTable: UnsafeMutablePointer<Float>,
                                   dTypeTable: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
                                   wordIds: UnsafePointer<Int32>, positionIds: UnsafePointer<Int32>,
                                   typeIds: UnsafePointer<Int32>, B: Int, T: Int, C: Int) {
        check(api.dpc_embeddings_backward(dWordTable, dPositionTable, dTypeTable, dOut, wordIds, positionIds, typeIds,
                                          Int32(B), Int32(T), Int32(C)), "embeddingsBackward")
    }
}
