// Open MPI waits forever in a collective whose peer stalled (SIGSTOP, a hung disk, a livelock):
// it only notices peers that die. The watchdog bounds every collective: a background thread
// that, when a collective has run longer than the timeout, reports which one and ends the job,
// so that a stalled rank costs minutes of an allocation instead of all of it.

import Foundation

final class CollectiveWatchdog: @unchecked Sendable {
    private let timeout: TimeInterval
    private let expired: @Sendable (String) -> Void
    private let condition = NSCondition()
    private var armed: (operation: String, deadline: Date)?

    /// `expired` runs on the watchdog's thread with the name of the collective that overran.
    init(timeout: TimeInterval, expired: @escaping @Sendable (String) -> Void) {
        self.timeout = timeout
        self.expired = expired
        let thread = Thread { [unowned self] in self.watch() }
        thread.name = "dp-train collective watchdog"
        thread.start()
    }

    func guarding<T>(_ operation: String, _ body: () throws -> T) rethrows -> T {
        condition.lock()
        armed = (operation, Date(timeIntervalSinceNow: timeout))
        condition.signal()
        condition.unlock()
        defer {
            condition.lock()
            armed = nil
            condition.unlock()
        }
        return try body()
    }

    private func watch() {
        condition.lock()
        while true {
            guard let current = armed else {
                condition.wait()
                continue
            }
            if Date() >= current.deadline {
                condition.unlock()
                expired(current.operation)
                return
            }
            _ = condition.wait(until: current.deadline)
        }
    }
}
