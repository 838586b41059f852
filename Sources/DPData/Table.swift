import Foundation

/// How a table file is laid out; chosen from the file's extension unless given.
public enum TableFormat: String, Sendable, CaseIterable {
    /// RFC 4180: a header row, fields quoted with `"`, quotes doubled, newlines allowed in quotes.
    case csv
    /// A header row and tab-separated fields with no quoting at all, as GLUE's loaders read them
    /// (`csv.reader(delimiter="\t", quotechar=None)`), so a `"` is an ordinary character.
    case tsv
    /// One JSON object per line; blank lines are skipped.
    case jsonLines
    /// One text per line, in a single column named `text`. Every line is a row, empty ones
    /// included, so that output line n always answers input line n.
    case lines

    public init(pathExtension: String) {
        switch pathExtension.lowercased() {
        case "csv": self = .csv
        case "tsv": self = .tsv
        case "jsonl", "ndjson": self = .jsonLines
        default: self = .lines
        }
    }
}

/// A user's table, held column by column as text; typed views (`floats`, `texts`) check each
/// value and name the file, line and column of the first one that is wrong.
public struct Table: Sendable {
    public let url: URL
    public let format: TableFormat
    public let columns: [String]
    /// Column-major; nil where a JSON line lacks the key or holds null.
    private let cells: [[String?]]
    private let lines: [Int]

    public var rowCount: Int { lines.count }

    public init(contentsOf url: URL, format: TableFormat? = nil) throws {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw DataError(path: displayPath(url), reason: "cannot read the file (\(error.localizedDescription))")
        }
        try self.init(parsing: data, format: format ?? TableFormat(pathExtension: url.pathExtension), url: url)
    }

    /// Parses bytes already in memory; `url` only names them in errors.
    public init(parsing data: Data, format: TableFormat, url: URL) throws {
        let path = displayPath(url)
        let parsed: ParsedTable = try data.withUnsafeBytes { raw in
            var bytes = UnsafeBufferPointer(start: raw.bindMemory(to: UInt8.self).baseAddress, count: raw.count)
            // Excel and Notepad put a byte-order mark before the header.
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes = UnsafeBufferPointer(rebasing: bytes[3...]) }
            try checkUTF8(bytes, path: path)
            if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }) {
                throw DataError(path: path, reason: "the file is empty")
            }
            switch format {
            case .csv: return try parseDelimited(bytes, quoted: true, separator: UInt8(ascii: ","), path: path)
            case .tsv: return try parseDelimited(bytes, quoted: false, separator: UInt8(ascii: "\t"), path: path)
            case .jsonLines: return try parseJSONLines(bytes, path: path)
            case .lines: return parseLines(bytes)
            }
        }
        if parsed.lines.isEmpty {
            throw DataError(path: path, reason: format == .csv || format == .tsv
                ? "no rows after the header (\(parsed.columns.joined(separator: ", ")))"
                : "the file has no rows")
        }
        self.url = url
        self.format = format
        self.columns = parsed.columns
        self.cells = parsed.cells
        self.lines = parsed.lines
    }

    /// The column's values in row order; a missing column throws, naming the column and listing
    /// those that exist.
    public func column(_ name: String) throws -> [String] {
        let index = try columnIndex(name)
        var values: [String] = []
        values.reserveCapacity(rowCount)
        for (row, value) in cells[index].enumerated() {
            guard let value else { throw error(row: row, column: name, "no value (the key is absent or null)") }
            values.append(value)
        }
        return values
    }

    /// The column as finite Floats (surrounding spaces allowed); the first value that does not
    /// parse, or is NaN or infinite, throws with its line.
    public func floats(_ name: String) throws -> [Float] {
        let values = try column(name)
        var numbers: [Float] = []
        numbers.reserveCapacity(values.count)
        for (row, text) in values.enumerated() {
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { throw error(row: row, column: name, "empty value; expected a number") }
            guard let number = Float(trimmed) else {
                throw error(row: row, column: name, "'\(abbreviated(text))' is not a number")
            }
            guard number.isFinite else {
                throw error(row: row, column: name, "'\(abbreviated(text))' is not a finite number")
            }
            numbers.append(number)
        }
        return numbers
    }

    /// The column as texts to encode; an empty or whitespace-only text throws with its line,
    /// because it would silently train on nothing but special tokens.
    public func texts(_ name: String) throws -> [String] {
        let values = try column(name)
        if let row = values.firstIndex(where: { $0.allSatisfy(\.isWhitespace) }) {
            throw error(row: row, column: name, "empty text")
        }
        return values
    }

    /// The file's line number (1-based) of each row, for error messages; a CSV row that spans
    /// several lines reports its first.
    public func lineNumber(ofRow row: Int) -> Int { lines[row] }

    /// An error pointing at one cell, for checks made by callers (e.g. a label unseen in training).
    public func error(row: Int, column: String, _ reason: String) -> DataError {
        DataError(path: displayPath(url), line: lines[row], column: column, reason: reason)
    }

    private func columnIndex(_ name: String) throws -> Int {
        if let index = columns.firstIndex(of: name) { return index }
        let existing = columns.map { "'\($0)'" }.joined(separator: ", ")
        throw DataError(path: displayPath(url), reason: "no column '\(name)'; the columns are \(existing)")
    }
}

struct ParsedTable {
    var columns: [String]
    var cells: [[String?]]
    var lines: [Int]
}

func abbreviated(_ text: String) -> String {
    text.count <= 40 ? text : String(text.prefix(37)) + "..."
}

/// The whole file is checked once; only on failure is it walked line by line to say where.
/// A newline byte is never part of a multi-byte sequence, so the line found is exact.
private func checkUTF8(_ bytes: UnsafeBufferPointer<UInt8>, path: String) throws {
    if String(validating: bytes, as: UTF8.self) != nil { return }
    var line = 1
    for slice in bytes.split(separator: 0x0A, omittingEmptySubsequences: false) {
        if String(validating: slice, as: UTF8.self) == nil {
            throw DataError(path: path, line: line, reason: "invalid UTF-8")
        }
        line += 1
    }
}
