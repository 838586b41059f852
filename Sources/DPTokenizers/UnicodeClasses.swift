// Character classes with the exact definitions the Hugging Face `tokenizers` crate uses (Rust's
// `char` methods and the `unicode_categories` crate), read from `Unicode.Scalar.Properties`.

extension Unicode.Scalar {
    /// Rust's `char::is_whitespace`: the Unicode White_Space property.
    @inline(__always) var isWhitespaceRust: Bool {
        value < 0x80 ? (value == 0x20 || (value >= 0x09 && value <= 0x0D)) : properties.isWhitespace
    }

    /// `unicode_categories::is_other`: Cc, Cf, Cn, Co or Cs.
    var isOtherCategory: Bool {
        switch properties.generalCategory {
        case .control, .format, .unassigned, .privateUse, .surrogate: return true
        default: return false
        }
    }

    /// BERT's control test: tab, newline and carriage return count as whitespace, not control.
    @inline(__always) var isBertControl: Bool {
        if value < 0x80 { return value != 0x09 && value != 0x0A && value != 0x0D && (value < 0x20 || value == 0x7F) }
        return isOtherCategory
    }

    /// ASCII punctuation (which includes symbols such as `$` and `^`) or any Unicode P* category.
    @inline(__always) var isBertPunctuation: Bool {
        if value < 0x80 {
            return (value >= 33 && value <= 47) || (value >= 58 && value <= 64)
                || (value >= 91 && value <= 96) || (value >= 123 && value <= 126)
        }
        switch properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation: return true
        default: return false
        }
    }

    /// The CJK ideograph blocks of BERT's `_is_chinese_char`.
    var isChineseCharacter: Bool {
        switch value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F,
             0x2B740...0x2B81F, 0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F: return true
        default: return false
        }
    }

    /// General category Mn, which BERT's accent stripping removes after NFD.
    var isNonspacingMark: Bool { value >= 0x300 && properties.generalCategory == .nonspacingMark }

    /// General category M (Mn, Mc, Me): `unicode_normalization::char::is_combining_mark`.
    var isMark: Bool {
        guard value >= 0x300 else { return false }
        switch properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark: return true
        default: return false
        }
    }

    /// \p{L}
    @inline(__always) var isLetter: Bool {
        if value < 0x80 { return (value | 0x20) >= 0x61 && (value | 0x20) <= 0x7A }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    /// \p{N}, and Rust's `char::is_numeric`: Nd, Nl or No.
    @inline(__always) var isNumber: Bool {
        if value < 0x80 { return value >= 0x30 && value <= 0x39 }
        switch properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    /// The regex class \w of the `regex` crate and Oniguruma: letters, marks, digits, connectors.
    var isWordCharacter: Bool {
        if value < 0x80 { return isLetter || isNumber || value == 0x5F }
        if properties.isAlphabetic || properties.isJoinControl { return true }
        switch properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
        default: return false
        }
    }
}

extension Array where Element == Unicode.Scalar {
    init(_ string: String) { self = Array(string.unicodeScalars) }

    var string: String {
        var s = String()
        s.unicodeScalars.append(contentsOf: self)
        return s
    }
}

extension ArraySlice where Element == Unicode.Scalar {
    var string: String {
        var s = String()
        s.unicodeScalars.append(contentsOf: self)
        return s
    }
}
