// Errors while reading a tokenizer, and the JSON walker that names the path of every field it
// reads, so that a bad tokenizer.json fails with one line such as
// `tokenizer.json: pre_tokenizer.pretokenizers[1]: unknown type "Foo"`.

import DPData
import Foundation

public struct TokenizerError: Error, CustomStringConvertible, Equatable {
    /// The file that could not be used (tokenizer.json, vocab.txt, ...).
    public var file: String
    /// The JSON path of the offending field, e.g. `normalizer.normalizers[2]`; empty for the whole file.
    public var path: String
    public var message: String

    public init(file: String, path: String, message: String) {
        self.file = file
        self.path = path
        self.message = message
    }

    public var description: String {
        path.isEmpty ? "\(file): \(message)" : "\(file): \(path): \(message)"
    }
}

/// One node of a parsed tokenizer.json, with the path that led to it.
struct JSONNode {
    let value: Any
    let path: String
    let file: String

    static func parse(_ data: Data, file: String) throws -> JSONNode {
        do {
            return JSONNode(value: try JSONReader.parse(data), path: "", file: file)
        } catch let failure as JSONSyntaxError {
            throw TokenizerError(file: file, path: "", message: "invalid JSON: \(failure.reason) at byte \(failure.offset + 1)")
        }
    }

    func error(_ message: String) -> TokenizerError {
        TokenizerError(file: file, path: path, message: message)
    }

    private func child(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// The field `key`, or nil when it is absent or null.
    func optional(_ key: String) throws -> JSONNode? {
        guard let object = value as? [String: Any] else { throw error("expected an object") }
        guard let field = object[key], !(field is NSNull) else { return nil }
        return JSONNode(value: field, path: child(key), file: file)
    }

    func required(_ key: String) throws -> JSONNode {
        guard let node = try optional(key) else {
            throw TokenizerError(file: file, path: child(key), message: "missing field")
        }
        return node
    }

    func string() throws -> String {
        guard let s = value as? String else { throw error("expected a string") }
        return s
    }

    func bool() throws -> Bool {
        guard let b = value as? Bool else { throw error("expected true or false") }
        return b
    }

    /// Digits only, as serde reads an integer field: `tokenizers` refuses 1.0 and 1e3 there too.
    func int() throws -> Int {
        guard let n = value as? JSONNumber, let exact = Int(n.text) else { throw error("expected an integer") }
        return exact
    }

    /// The value `tokenizers` reads (see JSONReader.swift), not always the nearest double.
    func double() throws -> Double {
        guard let n = value as? JSONNumber else { throw error("expected a number") }
        return n.value
    }

    func array() throws -> [JSONNode] {
        guard let items = value as? [Any] else { throw error("expected an array") }
        return items.enumerated().map { JSONNode(value: $1, path: "\(path)[\($0)]", file: file) }
    }

    /// Key-value pairs of an object (unordered).
    func object() throws -> [(key: String, node: JSONNode)] {
        guard let object = value as? [String: Any] else { throw error("expected an object") }
        return object.map { (key: $0.key, node: JSONNode(value: $0.value, path: child($0.key), file: file)) }
    }

    func optionalString(_ key: String) throws -> String? { try optional(key)?.string() }
    func optionalBool(_ key: String) throws -> Bool? { try optional(key)?.bool() }
    func optionalInt(_ key: String) throws -> Int? { try optional(key)?.int() }

    /// The `type` field of a component, for dispatch and the unknown-type error.
    func componentType() throws -> String { try required("type").string() }

    func unknownType(_ type: String) -> TokenizerError { error("unknown type \"\(type)\"") }
}
