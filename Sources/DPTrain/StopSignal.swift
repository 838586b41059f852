// SIGTERM and SIGUSR1 (Slurm's preemption warning) ask the run to stop cleanly: the handler
// only sets a flag; the trainer shares it through the per-step allreduce, so that every rank
// finishes the same step, rank 0 writes a checkpoint, and all exit together.

import Foundation

private nonisolated(unsafe) var receivedSignal: sig_atomic_t = 0

public enum StopSignal {
    public static func install() {
        for number in [SIGTERM, SIGUSR1] {
            signal(number) { number in receivedSignal = number }
        }
    }

    /// The signal that asked for a stop, or nil.
    public static var received: Int32? { receivedSignal == 0 ? nil : Int32(receivedSignal) }

    /// 0 stands for a signal that reached another rank only.
    public static func name(_ number: Int32) -> String {
        switch number {
        case 0: return "a signal to another rank"
        case SIGTERM: return "SIGTERM"
        case SIGUSR1: return "SIGUSR1"
        default: return "signal \(number)"
        }
    }
}
