// Named host tensors as the buffer views SafeTensorsWriter takes, for tests that build files.

/// Calls `body` with views of `tensors` (name, shape, values) that stay valid during the call.
public func withTensorViews(_ tensors: [(String, [Int], [Float])],
                            _ body: ([(name: String, shape: [Int], values: UnsafeBufferPointer<Float>)]) throws -> Void)
    rethrows {
    let flat = tensors.flatMap(\.2)
    try flat.withUnsafeBufferPointer { all in
        var start = 0
        let views = tensors.map { name, shape, values in
            defer { start += values.count }
            return (name: name, shape: shape, values: UnsafeBufferPointer(rebasing: all[start..<(start + values.count)]))
        }
        try body(views)
    }
}
