// CSV (RFC 4180) and TSV (no quoting), read straight from the file's bytes: every delimiter is
// ASCII, so fields are cut as byte ranges and decoded once, already known to be valid UTF-8.

private let newline = UInt8(ascii: "\n")
private let carriageReturn = UInt8(ascii: "\r")
private let quote = UInt8(ascii: "\"")

func parseDelimited(_ bytes: UnsafeBufferPointer<UInt8>, quoted: Bool, separator: UInt8,
                    path: String) throws -> ParsedTable {
    var header: [String]?
    var cells: [[String?]] = []
    var lines: [Int] = []
    var reader = RecordReader(bytes: bytes, separator: separator, quoted: quoted, path: path)
    while let (line, fields) = try reader.next() {
        guard let columns = header else {
            try checkUnique(fields, path: path, line: line)
            header = fields
            cells = Array(repeating: [], count: fields.count)
            continue
        }
        guard fields.count == columns.count else {
            throw DataError(path: path, line: line, reason:
                "\(fields.count) fields, but the header has \(columns.count) (\(columns.joined(separator: ", ")))")
        }
        for (index, field) in fields.enumerated() { cells[index].append(field) }
        lines.append(line)
    }
    return ParsedTable(columns: header ?? [], cells: cells, lines: lines)
}

private func checkUnique(_ names: [String], path: String, line: Int) throws {
    var seen = Set<String>()
    for name in names where !seen.insert(name).inserted {
        throw DataError(path: path, line: line, reason: "the header names column '\(name)' twice")
    }
}

/// Yields one record at a time with the line it starts on; blank lines between records are
/// skipped, as pandas and csv.DictReader skip them.
private struct RecordReader {
    let bytes: UnsafeBufferPointer<UInt8>
    let separator: UInt8
    let quoted: Bool
    let path: String
    var position = 0
    var line = 1

    init(bytes: UnsafeBufferPointer<UInt8>, separator: UInt8, quoted: Bool, path: String) {
        self.bytes = bytes
        self.separator = separator
        self.quoted = quoted
        self.path = path
    }

    /// True at the end of a line: "\n", "\r\n", or a final "\r" before the end of the file.
    private func atLineEnd(_ i: Int) -> Bool {
        i < bytes.count && (bytes[i] == newline
            || (bytes[i] == carriageReturn && (i + 1 == bytes.count || bytes[i + 1] == newline)))
    }

    /// Moves past a line end at `position`, if there is one.
    private mutating func skipLineEnd() {
        if position < bytes.count && bytes[position] == carriageReturn { position += 1 }
        if position < bytes.count && bytes[position] == newline { position += 1 }
        line += 1
    }

    mutating func next() throws -> (Int, [String])? {
        while atLineEnd(position) { skipLineEnd() }
        guard position < bytes.count else { return nil }
        let start = line
        var fields: [String] = []
        while true {
            if quoted && bytes[position] == quote {
                fields.append(try quotedField())
            } else {
                let begin = position
                while position < bytes.count && bytes[position] != separator && !atLineEnd(position) {
                    position += 1
                }
                fields.append(String(decoding: UnsafeBufferPointer(rebasing: bytes[begin..<position]), as: UTF8.self))
            }
            if position == bytes.count { return (start, fields) }
            if atLineEnd(position) {
                skipLineEnd()
                return (start, fields)
            }
            guard bytes[position] == separator else {
                throw DataError(path: path, line: line, reason:
                    "unexpected character after a closing quote (a quote inside a field must be doubled)")
            }
            position += 1
            // A separator as the very last byte still ends with one more, empty field.
            if position == bytes.count { fields.append(""); return (start, fields) }
        }
    }

    /// Reads a quoted field starting at its opening quote; `""` inside stands for one `"`.
    private mutating func quotedField() throws -> String {
        let opening = line
        position += 1
        var value: [UInt8] = []
        var segment = position
        while true {
            guard position < bytes.count else {
                throw DataError(path: path, line: opening, reason: "a quote opened on this line is never closed")
            }
            let byte = bytes[position]
            if byte == quote {
                if position + 1 < bytes.count && bytes[position + 1] == quote {
                    value.append(contentsOf: bytes[segment...position])
                    position += 2
                    segment = position
                    continue
                }
                value.append(contentsOf: bytes[segment..<position])
                position += 1
                return String(decoding: value, as: UTF8.self)
            }
            if byte == newline { line += 1 }
            position += 1
        }
    }
}
