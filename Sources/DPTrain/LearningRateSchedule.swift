// transformers' get_linear_schedule_with_warmup: the rate climbs linearly from 0 over the warmup
// steps, then falls linearly to 0 at the last step. Step k is the k-th optimizer update counted
// from 0, so with warmup the very first update uses a rate of 0, exactly as the HF Trainer does.

public struct LinearWarmupDecay: Sendable, Equatable {
    public let peak: Float
    public let warmupSteps: Int
    public let totalSteps: Int

    public init(peak: Float, warmupSteps: Int, totalSteps: Int) {
        precondition(totalSteps > 0 && warmupSteps >= 0, "a schedule needs at least one step")
        self.peak = peak
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
    }

    /// Warmup over ceil(ratio * total) steps, as TrainingArguments.get_warmup_steps rounds.
    public init(peak: Float, warmupRatio: Double, totalSteps: Int) {
        self.init(peak: peak, warmupSteps: Int((warmupRatio * Double(totalSteps)).rounded(.up)), totalSteps: totalSteps)
    }

    public func learningRate(atStep step: Int) -> Float {
        if step < warmupSteps { return peak * Float(step) / Float(max(1, warmupSteps)) }
        let remaining = Float(totalSteps - step) / Float(max(1, totalSteps - warmupSteps))
        return peak * max(0, remaining)
    }
}
