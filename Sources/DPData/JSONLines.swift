// JSON Lines: one object per line, read by a small parser of our own rather than
// JSONSerialization, so that keys keep their order in the file (columns are listed in the order
// they first appear) and numbers keep the text they were written with (an id 12345678901234567890
// stays exactly that). Strings, numbers and booleans become text; null is no value; a nested
// object or array is kept as its JSON text.

func parseJSONLines(_ bytes: UnsafeBufferPointer<UInt8>, path: String) throws -> ParsedTable {
    var columns: [String] = []
    var columnIndex: [String: Int] = [:]
    var cells: [[String?]] = []
    var lines: [Int] = []
    var lineNumber = 0
    for line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
        lineNumber += 1
        var parser = JSONObjectParser(bytes: UnsafeBufferPointer(rebasing: line))
        parser.skipWhitespace()
        if parser.atEnd { continue }
        let pairs: [(String, String?)]
        do {
            pairs = try parser.object()
        } catch let failure as JSONSyntaxError {
            throw DataError(path: path, line: lineNumber, reason: "invalid JSON: \(failure.reason) at character \(failure.offset + 1)")
        }
        let row = lines.count
        for (key, value) in pairs {
            let index: Int
            if let known = columnIndex[key] {
                index = known
            } else {
                index = columns.count
                columnIndex[key] = index
                columns.append(key)
                cells.append(Array(repeating: nil, count: row))
            }
            if cells[index].count > row {
                throw DataError(path: path, line: lineNumber, column: key, reason: "the key appears twice in one object")
            }
            cells[index].append(value)
        }
        // Keys this line lacks get no value, so every column stays one entry per row.
        for index in cells.indices where cells[index].count == row { cells[index].append(nil) }
        lines.append(lineNumber)
    }
    return ParsedTable(columns: columns, cells: cells, lines: lines)
}

private struct JSONObjectParser {
    let bytes: UnsafeBufferPointer<UInt8>
    var position = 0

    init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    var atEnd: Bool { position >= bytes.count }

    private func fail(_ reason: String) -> JSONSyntaxError { JSONSyntaxError(reason: reason, offset: position) }

    private var current: UInt8? { position < bytes.count ? bytes[position] : nil }

    mutating func skipWhitespace() {
        while let byte = current, byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0A { position += 1 }
    }

    private mutating func expect(_ byte: UInt8, _ what: String) throws {
        guard current == byte else { throw fail(current == nil ? "the line ends where \(what) was expected" : "expected \(what)") }
        position += 1
    }

    /// The whole line must be one object, and nothing but whitespace may follow it.
    mutating func object() throws -> [(String, String?)] {
        guard current == UInt8(ascii: "{") else { throw fail("each line must be a JSON object") }
        position += 1
        var pairs: [(String, String?)] = []
        skipWhitespace()
        if current == UInt8(ascii: "}") {
            position += 1
        } else {
            while true {
                skipWhitespace()
                guard current == UInt8(ascii: "\"") else { throw fail("expected a key in double quotes") }
                let key = try string()
                skipWhitespace()
                try expect(UInt8(ascii: ":"), "':'")
                skipWhitespace()
                pairs.append((key, try scalar()))
                skipWhitespace()
                if current == UInt8(ascii: ",") { position += 1; continue }
                try expect(UInt8(ascii: "}"), "',' or '}'")
                break
            }
        }
        skipWhitespace()
        if !atEnd { throw fail("text after the object") }
        return pairs
    }

    /// A value as table text: nil for null, the raw JSON for an object or array.
    private mutating func scalar() throws -> String? {
        switch current {
        case UInt8(ascii: "\""): return try string()
        case UInt8(ascii: "t"): try literal("true"); return "true"
        case UInt8(ascii: "f"): try literal("false"); return "false"
        case UInt8(ascii: "n"): try literal("null"); return nil
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            let start = position
            try skipValue()
            return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
        case let byte? where byte == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte):
            return try number()
        case nil: throw fail("the line ends where a value was expected")
        default: throw fail("expected a value")
        }
    }

    private mutating func literal(_ word: StaticString) throws {
        let text = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        guard position + text.count <= bytes.count,
              bytes[position..<position + text.count].elementsEqual(text) else { throw fail("expected a value") }
        position += text.count
    }

    /// JSON's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    private mutating func number() throws -> String {
        let start = position
        func digits(_ parser: inout JSONObjectParser) -> Int {
            let begin = parser.position
            while let byte = parser.current, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { parser.position += 1 }
            return parser.position - begin
        }
        if current == UInt8(ascii: "-") { position += 1 }
        if current == UInt8(ascii: "0") {
            position += 1
        } else if digits(&self) == 0 {
            throw fail("invalid number")
        }
        if current == UInt8(ascii: ".") {
            position += 1
            if digits(&self) == 0 { throw fail("invalid number") }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            position += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
            if digits(&self) == 0 { throw fail("invalid number") }
        }
        return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
    }

    private mutating func string() throws -> String { try decodeJSONString(bytes, at: &position) }

    /// Moves past a nested object or array, checking its syntax.
    private mutating func skipValue() throws {
        skipWhitespace()
        switch current {
        case UInt8(ascii: "{"):
            position += 1
            skipWhitespace()
            if current == UInt8(ascii: "}") { position += 1; return }
            while true {
                skipWhitespace()
                guard current == UInt8(ascii: "\"") else { throw fail("expected a key in double quotes") }
                _ = try string()
                skipWhitespace()
                try expect(UInt8(ascii: ":"), "':'")
                try skipValue()
                skipWhitespace()
                if current == UInt8(ascii: ",") { position += 1; continue }
                try expect(UInt8(ascii: "}"), "',' or '}'")
                return
            }
        case UInt8(ascii: "["):
            position += 1
            skipWhitespace()
            if current == UInt8(ascii: "]") { position += 1; return }
            while true {
                try skipValue()
                skipWhitespace()
                if current == UInt8(ascii: ",") { position += 1; continue }
                try expect(UInt8(ascii: "]"), "',' or ']'")
                return
            }
        default:
            _ = try scalar()
        }
    }
}

func parseLines(_ bytes: UnsafeBufferPointer<UInt8>) -> ParsedTable {
    var texts: [String?] = []
    var lines: [Int] = []
    var pieces = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
    // The newline that ends the last line does not start another, empty one.
    if pieces.last?.isEmpty == true { pieces.removeLast() }
    for (index, piece) in pieces.enumerated() {
        var line = piece
        if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        texts.append(String(decoding: UnsafeBufferPointer(rebasing: line), as: UTF8.self))
        lines.append(index + 1)
    }
    return ParsedTable(columns: ["text"], cells: [texts], lines: lines)
}
