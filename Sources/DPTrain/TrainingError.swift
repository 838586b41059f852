// Everything that stops a training run, each as one line that names the file, option or step.

public enum TrainingError: Error, CustomStringConvertible, Equatable {
    case cannotWrite(path: String, reason: String)
    case badTrainerState(path: String, field: String, reason: String)
    case resumeMismatch(path: String, field: String, checkpoint: String, now: String)
    case tooManyBadSteps(step: Int, count: Int)
    case parametersDiverged(step: Int, ranks: Int, worldSize: Int)
    case noCheckpoint(folder: String)
    case optionDoesNotFit(option: String, model: String, reason: String)
    case unknownMetric(name: String, task: String, known: [String])

    public var description: String {
        switch self {
        case let .cannotWrite(path, reason):
            return "\(path): cannot write: \(reason)"
        case let .badTrainerState(path, field, reason):
            return "\(path): \(field): \(reason)"
        case let .resumeMismatch(path, field, checkpoint, now):
            return "\(path): cannot resume: \(field) was \(checkpoint) in the checkpoint and is \(now) now"
        case let .tooManyBadSteps(step, count):
            return "step \(step): the loss or gradient was NaN or infinite \(count) steps in a row; stopping "
                + "(lower --lr, or check the targets)"
        case let .parametersDiverged(step, ranks, worldSize):
            return "step \(step): --check found parameters that differ from rank 0's on \(ranks) of \(worldSize) ranks"
        case let .noCheckpoint(folder):
            return "\(folder): --resume found no complete checkpoint-<step> folder"
        case let .optionDoesNotFit(option, model, reason):
            return "\(option) does not fit \(model): \(reason)"
        case let .unknownMetric(name, task, known):
            return "--metric-for-best \(name): \(task) evaluation has no such metric; it has \(known.joined(separator: ", "))"
        }
    }
}
