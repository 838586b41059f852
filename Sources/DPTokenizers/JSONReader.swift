// tokenizer.json read the way the `tokenizers` library reads it, by a parser of our own.
// Neither of Foundation's readers will do on Linux:
//   - JSONSerialization drops a byte-order mark that begins a string (a Unigram piece "\u{FEFF}"
//     became "") and hands 17-digit numbers over as NSDecimalNumber, off in the last bits;
//   - JSONDecoder rounds numbers correctly, and `tokenizers` does not: serde_json, without its
//     float_roundtrip feature, turns the decimal digits into a u64, converts that to f64 and
//     divides by a power of ten, rounding twice. A sixth of a trained Unigram's scores come out
//     one ulp apart, and since scores of equal-looking segmentations tie but for the last bit,
//     ids differ unless the scores are read the same way (JSONNumber.value).
// Values come out as String, Bool, JSONNumber, [Any], [String: Any] and NSNull, for JSONNode.

import DPData
import Foundation

/// A number as written, and its value as serde_json computes it.
struct JSONNumber {
    let text: Substring
    let value: Double
}

struct JSONReader {
    /// serde_json's recursion limit: a corrupt or hostile file fails with a message instead of
    /// overflowing the stack.
    static let maximumDepth = 128

    private let bytes: UnsafeBufferPointer<UInt8>
    private var position = 0
    private var depth = 0

    static func parse(_ data: Data) throws -> Any {
        try Array(data).withUnsafeBufferPointer { bytes in
            var reader = JSONReader(bytes: bytes)
            reader.skipWhitespace()
            let value = try reader.value()
            reader.skipWhitespace()
            guard reader.position == bytes.count else { throw reader.fail("unexpected text after the document") }
            return value
        }
    }

    private init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    private func fail(_ reason: String) -> JSONSyntaxError { JSONSyntaxError(reason: reason, offset: position) }

    private var current: UInt8? { position < bytes.count ? bytes[position] : nil }

    private mutating func skipWhitespace() {
        while let byte = current, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { position += 1 }
    }

    private mutating func expect(_ byte: UInt8, _ what: String) throws {
        guard current == byte else { throw fail("expected \(what)") }
        position += 1
    }

    private mutating func value() throws -> Any {
        switch current {
        case UInt8(ascii: "{"): return try nested { try $0.object() }
        case UInt8(ascii: "["): return try nested { try $0.array() }
        case UInt8(ascii: "\""): return try string()
        case UInt8(ascii: "t"): try literal("true"); return true
        case UInt8(ascii: "f"): try literal("false"); return false
        case UInt8(ascii: "n"): try literal("null"); return NSNull()
        case let byte? where byte == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte):
            return try number()
        case nil: throw fail("the document ends where a value was expected")
        default: throw fail("unexpected character")
        }
    }

    private mutating func nested<Value>(_ read: (inout JSONReader) throws -> Value) throws -> Value {
        guard depth < Self.maximumDepth else { throw fail("nested more than \(Self.maximumDepth) levels deep") }
        depth += 1
        defer { depth -= 1 }
        return try read(&self)
    }

    private mutating func object() throws -> [String: Any] {
        position += 1
        var fields: [String: Any] = [:]
        skipWhitespace()
        if current == UInt8(ascii: "}") { position += 1; return fields }
        while true {
            skipWhitespace()
            guard current == UInt8(ascii: "\"") else { throw fail("expected a key in quotes") }
            let key = try string()
            skipWhitespace()
            try expect(UInt8(ascii: ":"), "':' after a key")
            skipWhitespace()
            fields[key] = try value()
            skipWhitespace()
            if current == UInt8(ascii: "}") { position += 1; return fields }
            try expect(UInt8(ascii: ","), "',' or '}' in an object")
        }
    }

    private mutating func array() throws -> [Any] {
        position += 1
        var items: [Any] = []
        skipWhitespace()
        if current == UInt8(ascii: "]") { position += 1; return items }
        while true {
            skipWhitespace()
            items.append(try value())
            skipWhitespace()
            if current == UInt8(ascii: "]") { position += 1; return items }
            try expect(UInt8(ascii: ","), "',' or ']' in an array")
        }
    }

    private mutating func literal(_ word: StaticString) throws {
        let expected = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        guard bytes.count - position >= expected.count,
              bytes[position..<position + expected.count].elementsEqual(expected) else {
            throw fail("expected \(word)")
        }
        position += expected.count
    }

    private mutating func string() throws -> String { try decodeJSONString(bytes, at: &position) }

    // MARK: Numbers, as serde_json 1.x parses them into f64 without float_roundtrip

    /// 1e0 ... 1e308, each correctly rounded, as serde_json's table holds them.
    private static let powersOfTen: [Double] = (0...308).map { Double("1e\($0)")! }

    private mutating func number() throws -> JSONNumber {
        let start = position
        let negative = current == UInt8(ascii: "-")
        if negative { position += 1 }
        var significand: UInt64 = 0
        var exponent = 0
        var overflowed = false
        func isDigit(_ byte: UInt8?) -> Bool { byte.map { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) } ?? false }
        /// Adds a digit while the significand has room; after that, digits only move the exponent
        /// (before the point) or are dropped (after it), as serde_json does.
        func take(_ digit: UInt64, fraction: Bool) {
            if !overflowed {
                let (times10, o1) = significand.multipliedReportingOverflow(by: 10)
                let (next, o2) = times10.addingReportingOverflow(digit)
                if !o1 && !o2 {
                    significand = next
                    if fraction { exponent -= 1 }
                    return
                }
                overflowed = true
            }
            if !fraction { exponent += 1 }
        }
        guard isDigit(current) else { throw fail("expected a digit") }
        if current == UInt8(ascii: "0") {
            position += 1
            if isDigit(current) { throw fail("a number with a leading zero") }
        } else {
            while isDigit(current) { take(UInt64(current! - UInt8(ascii: "0")), fraction: false); position += 1 }
        }
        if current == UInt8(ascii: ".") {
            position += 1
            guard isDigit(current) else { throw fail("expected a digit after the decimal point") }
            while isDigit(current) { take(UInt64(current! - UInt8(ascii: "0")), fraction: true); position += 1 }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            position += 1
            var negativeExponent = false
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") {
                negativeExponent = current == UInt8(ascii: "-")
                position += 1
            }
            guard isDigit(current) else { throw fail("expected a digit in the exponent") }
            var written = 0
            while isDigit(current) {
                written = min(written * 10 + Int(current! - UInt8(ascii: "0")), Int(Int32.max))
                position += 1
            }
            exponent += negativeExponent ? -written : written
        }
        let text = String(decoding: bytes[start..<position], as: UTF8.self)[...]
        guard let magnitude = Self.serdeValue(significand: significand, exponent: exponent) else {
            throw fail("number out of range")
        }
        return JSONNumber(text: text, value: negative ? -magnitude : magnitude)
    }

    /// significand as f64, then one multiplication or division by a power of ten (two roundings).
    private static func serdeValue(significand: UInt64, exponent: Int) -> Double? {
        var value = Double(significand), exponent = exponent
        while true {
            if exponent.magnitude < powersOfTen.count {
                if exponent >= 0 {
                    value *= powersOfTen[exponent]
                    return value.isInfinite ? nil : value
                }
                return value / powersOfTen[-exponent]
            }
            if value == 0 { return 0 }
            if exponent >= 0 { return nil }
            value /= 1e308
            exponent += 308
        }
    }
}
