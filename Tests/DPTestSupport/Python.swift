// The Python references some tests compare against: scripts/test.sh names an interpreter with
// PyTorch, transformers, SciPy and NumPy in DPTRAIN_PYTHON, and those tests skip without it.

import Foundation

/// The interpreter DPTRAIN_PYTHON names; nil where it is not set.
public var referencePython: String? { ProcessInfo.processInfo.environment["DPTRAIN_PYTHON"] }

public struct PythonFailed: Error, CustomStringConvertible {
    public let python: String
    public let status: Int32
    public var description: String { "\(python): the reference script exited with status \(status)" }
}

/// Runs `script` (`python -c`) with `arguments`, `input` on its standard input, and returns what
/// it printed; throws PythonFailed when it exits non-zero.
public func runPython(_ python: String, _ script: String, arguments: [String] = [], input: Data? = nil) throws -> Data {
    let process = Process()
    // Through env, so that DPTRAIN_PYTHON may be a bare name such as python3.
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [python, "-c", script] + arguments
    let stdin = Pipe(), stdout = Pipe()
    process.standardInput = stdin
    process.standardOutput = stdout
    try process.run()
    if let input { stdin.fileHandleForWriting.write(input) }
    try stdin.fileHandleForWriting.close()
    let output = stdout.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw PythonFailed(python: python, status: process.terminationStatus) }
    return output
}
