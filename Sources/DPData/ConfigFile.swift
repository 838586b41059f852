import Foundation
import Yams

/// `dp-train train --config FILE`: a YAML or JSON mapping with the same keys as the command-line
/// options, turned into arguments that go BEFORE the user's own. swift-argument-parser keeps the
/// last value of a repeated option, so whatever the user types overrides the file without the two
/// ever being merged by hand, and every value is checked by the same parser and `validate()`.
public enum ConfigFile {
    /// `options` and `flags` are the long names without `--`. A key may be written `batch-size`
    /// or `batch_size`. A scalar gives `--key value`, a list `--key a,b`, a flag `true` gives
    /// `--key` and `false` nothing. Unknown keys, nested mappings and null values throw.
    public static func arguments(contentsOf url: URL, options: Set<String>, flags: Set<String>) throws -> [String] {
        let path = displayPath(url)
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw DataError(path: path, reason: "cannot read the config file (\(error.localizedDescription))")
        }
        let entries: [Entry]
        switch url.pathExtension.lowercased() {
        case "yaml", "yml": entries = try yamlEntries(data, path: path)
        case "json": entries = try jsonEntries(data, path: path)
        default:
            throw DataError(path: path, reason: "a config file must end in .yaml, .yml or .json")
        }

        var arguments: [String] = []
        var seen: [String: String] = [:]
        for entry in entries {
            let name = entry.key.replacingOccurrences(of: "_", with: "-")
            if let earlier = seen.updateValue(entry.key, forKey: name) {
                throw DataError(path: path, line: entry.line, reason: "'\(entry.key)' repeats '\(earlier)'")
            }
            if name == "config" {
                throw DataError(path: path, line: entry.line, reason: "a config file cannot name another config file")
            }
            if flags.contains(name) {
                guard case .scalar(_, let boolean?) = entry.value else {
                    throw DataError(path: path, line: entry.line, reason: "'\(entry.key)' is a flag; its value must be true or false")
                }
                if boolean { arguments.append("--\(name)") }
            } else if options.contains(name) {
                switch entry.value {
                case .scalar(let text, _): arguments += ["--\(name)", text]
                case .list(let items): arguments += ["--\(name)", items.joined(separator: ",")]
                }
            } else {
                throw DataError(path: path, line: entry.line, reason: unknownKey(entry.key, known: options.union(flags)))
            }
        }
        return arguments
    }

    private enum Value {
        /// The text as written, which options parse; `boolean` is set where it reads as one,
        /// which flags need.
        case scalar(String, boolean: Bool?)
        case list([String])
    }

    private struct Entry {
        let key: String
        let value: Value
        let line: Int?
    }

    private static func unknownKey(_ key: String, known: Set<String>) -> String {
        let name = key.replacingOccurrences(of: "_", with: "-")
        let close = known.filter { editDistance($0, name) <= 2 || (name.count >= 3 && $0.contains(name)) }.sorted()
        let hint = close.isEmpty
            ? "see `dp-train train --help` for the options"
            : "did you mean \(close.map { "'\($0)'" }.joined(separator: " or "))?"
        return "unknown key '\(key)'; \(hint)"
    }

    // MARK: YAML

    private static func yamlEntries(_ data: Data, path: String) throws -> [Entry] {
        guard let text = String(data: data, encoding: .utf8) else {
            throw DataError(path: path, reason: "the config file is not valid UTF-8")
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw yamlFailure(error, path: path)
        }
        guard let root else { throw DataError(path: path, reason: "the config file is empty") }
        guard case .mapping(let mapping) = root else {
            throw DataError(path: path, line: root.mark?.line, reason: "the config file must be a mapping of option names to values")
        }
        return try mapping.map { keyNode, valueNode in
            guard case .scalar(let keyScalar) = keyNode else {
                throw DataError(path: path, line: keyNode.mark?.line, reason: "a key must be an option name")
            }
            let key = keyScalar.string
            let line = keyNode.mark?.line
            return Entry(key: key, value: try yamlValue(valueNode, key: key, line: line, path: path), line: line)
        }
    }

    private static func yamlValue(_ node: Node, key: String, line: Int?, path: String) throws -> Value {
        switch node {
        case .scalar(let scalar):
            if scalar.style == .plain && node.null != nil {
                throw DataError(path: path, line: line, reason: "'\(key)' has no value")
            }
            return .scalar(scalar.string, boolean: node.bool)
        case .sequence(let sequence):
            return .list(try sequence.map { item in
                guard case .scalar(let scalar) = item, !(scalar.style == .plain && item.null != nil) else {
                    throw DataError(path: path, line: item.mark?.line ?? line, reason: "'\(key)': a list may hold only plain values")
                }
                return scalar.string
            })
        case .mapping:
            throw DataError(path: path, line: line, reason: "'\(key)': nested mappings are not supported; give options at the top level")
        }
    }

    /// Yams describes a syntax error over several lines with the source quoted; keep one line.
    private static func yamlFailure(_ error: YamlError, path: String) -> DataError {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
             .composer(_, let problem, let mark, _):
            return DataError(path: path, line: mark.line, reason: "invalid YAML: \(problem)")
        default:
            let summary = "\(error)".split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
            return DataError(path: path, reason: "invalid YAML: \(summary)")
        }
    }

    // MARK: JSON

    private static func jsonEntries(_ data: Data, path: String) throws -> [Entry] {
        let root: Any
        do {
            root = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw DataError(path: path, reason: "invalid JSON (\(error.localizedDescription))")
        }
        guard let object = root as? [String: Any] else {
            throw DataError(path: path, reason: "the config file must be a JSON object of option names to values")
        }
        // JSONSerialization forgets the key order; sorting keeps the arguments reproducible.
        return try object.keys.sorted().map { key in
            Entry(key: key, value: try jsonValue(object[key]!, key: key, path: path), line: nil)
        }
    }

    private static func jsonValue(_ value: Any, key: String, path: String) throws -> Value {
        if let items = value as? [Any] {
            return .list(try items.map { item in
                guard let text = jsonScalar(item) else {
                    throw DataError(path: path, reason: "'\(key)': a list may hold only plain values")
                }
                return text
            })
        }
        if value is [String: Any] {
            throw DataError(path: path, reason: "'\(key)': nested objects are not supported; give options at the top level")
        }
        guard let text = jsonScalar(value) else { throw DataError(path: path, reason: "'\(key)' has no value") }
        let boolean = (value as? NSNumber).flatMap { isBoolean($0) ? $0.boolValue : nil }
        return .scalar(text, boolean: boolean)
    }

    private static func jsonScalar(_ value: Any) -> String? {
        if let text = value as? String { return text }
        if let number = value as? NSNumber {
            return isBoolean(number) ? (number.boolValue ? "true" : "false") : number.stringValue
        }
        return nil
    }

    /// JSONSerialization gives booleans as NSNumbers of type "c" (char) and never uses that type
    /// for a number, on Linux and on Darwin alike.
    private static func isBoolean(_ number: NSNumber) -> Bool {
        String(cString: number.objCType) == "c"
    }
}

/// Levenshtein distance, for suggesting the option a mistyped key meant.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    var previous = Array(0...b.count)
    for i in 1...max(1, a.count) where !a.isEmpty {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in stride(from: 1, through: b.count, by: 1) {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return previous[b.count]
}
