import Foundation

/// A problem in a user's file, as one line: `<path>:<line>: column '<c>': <reason>`.
/// The line and column are left out where the problem has none (an empty file, a missing column).
public struct DataError: Error, CustomStringConvertible, Equatable, Sendable {
    public let path: String
    public let line: Int?
    public let column: String?
    public let reason: String

    public init(path: String, line: Int? = nil, column: String? = nil, reason: String) {
        self.path = path
        self.line = line
        self.column = column
        self.reason = reason
    }

    public var description: String {
        var text = path
        if let line { text += ":\(line)" }
        text += ": "
        if let column { text += "column '\(column)': " }
        return text + reason
    }
}

extension DataError: LocalizedError {
    public var errorDescription: String? { description }
}

/// The path as the user wrote it, so that messages point at what they typed.
func displayPath(_ url: URL) -> String {
    url.isFileURL ? url.relativePath : url.absoluteString
}
