import DPData
import Foundation
import XCTest

final class ConfigFileTests: XCTestCase {
    let options: Set<String> = ["model", "train", "batch-size", "lr", "adam-betas", "adam-bias-correction", "epochs", "text-column"]
    let flags: Set<String> = ["check", "resume"]

    func arguments(_ text: String, extension ext: String) throws -> [String] {
        try ConfigFile.arguments(contentsOf: try temporaryFile(text, extension: ext, name: "config"), options: options, flags: flags)
    }

    func testYAMLScalarsListsAndFlagsInFileOrder() throws {
        let yaml = """
        # a comment
        model: artifacts/models/all-MiniLM-L6-v2
        batch_size: 16
        lr: 2e-5
        adam-betas: [0.9, 0.999]
        adam_bias_correction: false
        text-column: "sentence 1"
        check: true
        resume: false
        """
        XCTAssertEqual(try arguments(yaml, extension: "yaml"), [
            "--model", "artifacts/models/all-MiniLM-L6-v2", "--batch-size", "16", "--lr", "2e-5",
            "--adam-betas", "0.9,0.999", "--adam-bias-correction", "false", "--text-column", "sentence 1", "--check",
        ])
    }

    func testYAMLBlockListsAndTheYmlExtension() throws {
        XCTAssertEqual(try arguments("adam-betas:\n  - 0.8\n  - 0.99\n", extension: "yml"), ["--adam-betas", "0.8,0.99"])
    }

    func testJSON() throws {
        let json = #"{"lr": 2e-5, "batch_size": 16, "adam-betas": [0.9, 0.999], "check": true, "resume": false, "model": "m", "adam-bias-correction": true}"#
        XCTAssertEqual(try arguments(json, extension: "json"), [
            "--adam-betas", "0.9,0.999", "--adam-bias-correction", "true", "--batch-size", "16", "--check",
            "--lr", "2e-05", "--model", "m",
        ])
    }

    func testUnknownKeysSuggestCloseMatches() throws {
        let error = dataError { try arguments("model: m\nbatch-sise: 8\n", extension: "yaml") }
        XCTAssertEqual(error?.line, 2)
        XCTAssertTrue(error?.description.hasSuffix("unknown key 'batch-sise'; did you mean 'batch-size'?") == true, "\(String(describing: error))")
        XCTAssertTrue(error?.description.contains("config.yaml:2:") == true)
        let far = dataError { try arguments(#"{"warp-speed": 9}"#, extension: "json") }
        XCTAssertTrue(far?.reason.hasPrefix("unknown key 'warp-speed'; see") == true, "\(String(describing: far))")
    }

    func testBadShapesAreErrors() throws {
        let cases: [(String, String, String)] = [
            ("model:\n  name: m\n", "yaml", "nested mappings"),
            (#"{"model": {"name": "m"}}"#, "json", "nested objects"),
            ("check: maybe\n", "yaml", "is a flag"),
            (#"{"check": 1}"#, "json", "is a flag"),
            ("model:\n", "yaml", "has no value"),
            (#"{"model": null}"#, "json", "has no value"),
            ("adam-betas: [0.9, [1]]\n", "yaml", "only plain values"),
            ("batch-size: 8\nbatch_size: 16\n", "yaml", "repeats"),
            ("config: other.yaml\n", "yaml", "cannot name another"),
            ("- model\n", "yaml", "must be a mapping"),
            ("[1]", "json", "must be a JSON object"),
            ("model: [unclosed\n", "yaml", "invalid YAML"),
            ("{\"model\": ", "json", "invalid JSON"),
            ("", "yaml", "empty"),
            ("model: m\n", "toml", ".yaml, .yml or .json"),
        ]
        let known = options.union(["config"])
        for (text, ext, expected) in cases {
            let url = try temporaryFile(text, extension: ext, name: "config")
            let error = dataError { try ConfigFile.arguments(contentsOf: url, options: known, flags: flags) }
            XCTAssertTrue(error?.description.contains(expected) == true, "\(text): \(String(describing: error))")
            XCTAssertTrue(error?.description.hasPrefix(url.path) == true, "\(text): \(String(describing: error))")
        }
    }

    func testQuotedBooleansAndNullsStayText() throws {
        XCTAssertEqual(try arguments("text-column: \"null\"\nmodel: 'yes'\n", extension: "yaml"),
                       ["--text-column", "null", "--model", "yes"])
    }
}
