// The named table of parameters. Parameters, gradients and AdamW's two moments each live in one
// flat buffer laid out by this table, so the optimizer is one loop, the gradient norm one
// reduction and the allreduce one call. Weight decay, per-layer norms and checkpoint I/O read
// the table instead of guessing from indices.

public struct ParameterSpec: Sendable, Equatable {
    /// The Hugging Face name without the model prefix, e.g. `encoder.layer.3.attention.self.query.weight`.
    public let name: String
    public let shape: [Int]
    /// False for biases, LayerNorm weights and LayerNorm biases.
    public let decays: Bool
    /// The encoder layer this tensor belongs to; nil for embeddings, pooler and head.
    public let layer: Int?
    /// Start of the tensor in the flat buffers, in floats.
    public let offset: Int

    public var count: Int { shape.reduce(1, *) }
    public var range: Range<Int> { offset..<(offset + count) }
}

public struct ParameterTable: Sendable {
    public private(set) var specs: [ParameterSpec] = []
    private var indexByName: [String: Int] = [:]
    public private(set) var totalCount = 0

    public init() {}

    /// Appends a tensor at the end of the flat layout and returns its offset.
    @discardableResult
    public mutating func append(_ name: String, _ shape: [Int], decays: Bool, layer: Int?) -> Int {
        precondition(indexByName[name] == nil, "parameter \(name) declared twice")
        let spec = ParameterSpec(name: name, shape: shape, decays: decays, layer: layer, offset: totalCount)
        indexByName[name] = specs.count
        specs.append(spec)
        totalCount += spec.count
        return spec.offset
    }

    public subscript(name: String) -> ParameterSpec? {
        indexByName[name].map { specs[$0] }
    }

    public var decayingCount: Int { specs.filter(\.decays).reduce(0) { $0 + $1.count } }
}
