// JSON string syntax (RFC 8259), shared by the JSON Lines reader here and DPTokenizers'
// tokenizer.json reader, which parse everything else their own way.

public struct JSONSyntaxError: Error {
    public let reason: String
    /// The byte where the problem is, from the start of the text parsed.
    public let offset: Int

    public init(reason: String, offset: Int) {
        self.reason = reason
        self.offset = offset
    }
}

/// The string whose opening quote is `bytes[position]`; leaves `position` just past the closing
/// quote. Decodes every escape, surrogate pairs included, and rejects raw control characters
/// and invalid UTF-8.
public func decodeJSONString(_ bytes: UnsafeBufferPointer<UInt8>, at position: inout Int) throws -> String {
    let opening = position
    position += 1
    var value: [UInt8] = []
    var segment = position
    func fail(_ reason: String, at offset: Int) -> JSONSyntaxError { JSONSyntaxError(reason: reason, offset: offset) }
    func hex4() throws -> UInt32 {
        guard position + 4 <= bytes.count else { throw fail("a \\u escape needs four hex digits", at: position) }
        var result: UInt32 = 0
        for _ in 0..<4 {
            guard let digit = Character(Unicode.Scalar(bytes[position])).hexDigitValue else {
                throw fail("a \\u escape needs four hex digits", at: position)
            }
            result = result * 16 + UInt32(digit)
            position += 1
        }
        return result
    }
    while true {
        guard position < bytes.count else { throw fail("a string is never closed", at: opening) }
        let byte = bytes[position]
        if byte == UInt8(ascii: "\"") {
            value.append(contentsOf: bytes[segment..<position])
            position += 1
            guard let text = String(validating: value, as: UTF8.self) else {
                throw fail("a string is not valid UTF-8", at: opening)
            }
            return text
        }
        if byte < 0x20 { throw fail("a control character inside a string must be escaped", at: position) }
        guard byte == UInt8(ascii: "\\") else {
            position += 1
            continue
        }
        value.append(contentsOf: bytes[segment..<position])
        position += 1
        guard position < bytes.count else { throw fail("the text ends inside an escape", at: position) }
        let escaped = bytes[position]
        position += 1
        switch escaped {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): value.append(escaped)
        case UInt8(ascii: "b"): value.append(0x08)
        case UInt8(ascii: "f"): value.append(0x0C)
        case UInt8(ascii: "n"): value.append(0x0A)
        case UInt8(ascii: "r"): value.append(0x0D)
        case UInt8(ascii: "t"): value.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try hex4()
            if (0xD800..<0xDC00).contains(scalar) {
                // A high surrogate must be followed by an escaped low one.
                guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"),
                      bytes[position + 1] == UInt8(ascii: "u") else {
                    throw fail("a lone surrogate \\u escape", at: position)
                }
                position += 2
                let low = try hex4()
                guard (0xDC00..<0xE000).contains(low) else { throw fail("a lone surrogate \\u escape", at: position) }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            }
            guard let unicode = Unicode.Scalar(scalar) else { throw fail("a lone surrogate \\u escape", at: position) }
            value.append(contentsOf: String(Character(unicode)).utf8)
        default:
            throw fail("an invalid escape", at: position - 1)
        }
        segment = position
    }
}
