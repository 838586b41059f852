// What rank 0 tells the user: a console line per logging step (a progress bar instead when
// stderr is a terminal), and metrics.jsonl, one JSON object per line, in the output folder.

import DPModels
import Foundation

public final class TrainingLog {
    private let metricsURL: URL?
    private let handle: FileHandle?
    private let interactive = isatty(STDERR_FILENO) == 1

    /// `metricsURL` nil logs to the console only. Resuming at `resumeStep` drops the records an
    /// interrupted run wrote after that step, so that the file reads as one uninterrupted run.
    public init(metricsURL: URL?, resumeStep: Int?) throws {
        self.metricsURL = metricsURL
        guard let metricsURL else { handle = nil; return }
        let manager = FileManager.default
        if let resumeStep, let old = try? String(contentsOf: metricsURL, encoding: .utf8) {
            let kept = old.split(separator: "\n").filter { line in
                guard let record = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      let step = record["step"] as? Int else { return false }
                return step <= resumeStep
            }
            try AtomicFile.save(Data(kept.map { $0 + "\n" }.joined().utf8), to: metricsURL)
        } else {
            try? manager.removeItem(at: metricsURL)
            guard manager.createFile(atPath: metricsURL.path, contents: nil) else {
                throw TrainingError.cannotWrite(path: metricsURL.path, reason: "cannot create the file")
            }
        }
        handle = try FileHandle(forWritingTo: metricsURL)
        handle?.seekToEndOfFile()
    }

    deinit { try? handle?.close() }

    public func record(_ fields: [String: Any]) throws {
        guard let handle, let metricsURL else { return }
        // JSON has no NaN or infinity; a skipped step's loss is written as null.
        let finite = fields.mapValues { value -> Any in
            if let number = value as? Double, !number.isFinite { return NSNull() }
            return value
        }
        var line = try JSONSerialization.data(withJSONObject: finite, options: [.sortedKeys])
        line.append(UInt8(ascii: "\n"))
        do {
            try handle.write(contentsOf: line)
        } catch {
            throw TrainingError.cannotWrite(path: metricsURL.path, reason: error.localizedDescription)
        }
    }

    public func say(_ message: String) {
        if interactive { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        print(message)
        fflush(stdout)
    }

    public func warn(_ message: String) {
        if interactive { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        FileHandle.standardError.write(Data("warning: \(message)\n".utf8))
    }

    /// A bar on stderr that the next console line overwrites; nothing when stderr is a file.
    public func progress(step: Int, total: Int, suffix: String) {
        guard interactive else { return }
        let width = 30, filled = total > 0 ? width * step / total : width
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        FileHandle.standardError.write(Data("\r\u{1B}[K[\(bar)] \(step)/\(total) \(suffix)".utf8))
    }
}

/// Seconds as h:mm:ss for the ETA.
func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0 else { return "?" }
    let total = Int(seconds.rounded())
    return String(format: "%d:%02d:%02d", total / 3600, total / 60 % 60, total % 60)
}
