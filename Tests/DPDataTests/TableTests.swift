import DPData
import DPTestSupport
import Foundation
import XCTest

/// Writes `bytes` to a fresh file with the given extension and returns its URL.
func temporaryFile(_ bytes: [UInt8], extension ext: String, name: String = "data") throws -> URL {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("dpdata-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let url = folder.appendingPathComponent("\(name).\(ext)")
    try Data(bytes).write(to: url)
    return url
}

func temporaryFile(_ text: String, extension ext: String, name: String = "data") throws -> URL {
    try temporaryFile(Array(text.utf8), extension: ext, name: name)
}

/// The one-line message of the DataError that `body` throws.
func dataError<T>(_ body: () throws -> T, file: StaticString = #filePath, line: UInt = #line) -> DataError? {
    do {
        _ = try body()
        XCTFail("expected a DataError", file: file, line: line)
    } catch let error as DataError {
        XCTAssertFalse(error.description.contains("\n"), "one line: \(error)", file: file, line: line)
        return error
    } catch {
        XCTFail("expected a DataError, got \(error)", file: file, line: line)
    }
    return nil
}

final class CSVTests: XCTestCase {
    func testQuotingDoubledQuotesNewlinesAndCRLF() throws {
        let text = "id,text,score\r\n1,\"a, b\",0.5\r\n2,\"she said \"\"hi\"\"\",1\r\n3,\"two\nlines\",2\r\n4,,3\r\n"
        let table = try Table(contentsOf: try temporaryFile(text, extension: "csv"))
        XCTAssertEqual(table.columns, ["id", "text", "score"])
        XCTAssertEqual(table.rowCount, 4)
        XCTAssertEqual(try table.column("text"), ["a, b", "she said \"hi\"", "two\nlines", ""])
        XCTAssertEqual(try table.column("id"), ["1", "2", "3", "4"])
        XCTAssertEqual(try table.floats("score"), [0.5, 1, 2, 3])
        // Row 3 starts on line 4 and spans two lines, so row 4 is on line 6.
        XCTAssertEqual((0..<4).map(table.lineNumber(ofRow:)), [2, 3, 4, 6])
    }

    func testLastLineWithoutNewlineBlankLinesAndTrailingEmptyField() throws {
        let table = try Table(contentsOf: try temporaryFile("a,b\n\n1,\n\n2,x", extension: "csv"))
        XCTAssertEqual(try table.column("b"), ["", "x"])
        XCTAssertEqual([table.lineNumber(ofRow: 0), table.lineNumber(ofRow: 1)], [3, 5])
    }

    func testQuotedFieldsAtTheEndOfTheFileAndCarriageReturnsInsideQuotes() throws {
        let table = try Table(contentsOf: try temporaryFile("a,b\n\"x\r\ny\",\"\"", extension: "csv"))
        XCTAssertEqual(try table.column("a"), ["x\r\ny"])
        XCTAssertEqual(try table.column("b"), [""])
    }

    func testQuoteInsideAnUnquotedFieldIsKept() throws {
        let table = try Table(contentsOf: try temporaryFile("a,b\n9\" TV,x\n", extension: "csv"))
        XCTAssertEqual(try table.column("a"), ["9\" TV"])
    }

    func testByteOrderMarkIsSkipped() throws {
        let table = try Table(contentsOf: try temporaryFile([0xEF, 0xBB, 0xBF] + Array("text,label\nhi,1\n".utf8), extension: "csv"))
        XCTAssertEqual(table.columns, ["text", "label"])
    }

    func testWrongFieldCountNamesTheLine() throws {
        let url = try temporaryFile("a,b\n1,2\n\"x\ny\",3,4\n", extension: "csv")
        let error = dataError { try Table(contentsOf: url) }
        XCTAssertEqual(error?.line, 3)
        XCTAssertEqual(error?.description, "\(url.path):3: 3 fields, but the header has 2 (a, b)")
    }

    func testUnterminatedQuoteNamesTheLineItOpens() throws {
        let url = try temporaryFile("a,b\n1,2\n3,\"open\n4,5\n", extension: "csv")
        let error = dataError { try Table(contentsOf: url) }
        XCTAssertEqual(error?.line, 3)
        XCTAssertTrue(error?.reason.contains("never closed") == true, "\(String(describing: error))")
    }

    func testTextAfterAClosingQuoteIsAnError() throws {
        let error = dataError { try Table(contentsOf: try temporaryFile("a,b\n\"x\"y,2\n", extension: "csv")) }
        XCTAssertEqual(error?.line, 2)
    }

    func testDuplicateHeaderNamesAreAnError() throws {
        let error = dataError { try Table(contentsOf: try temporaryFile("a,a\n1,2\n", extension: "csv")) }
        XCTAssertEqual(error?.line, 1)
        XCTAssertTrue(error?.reason.contains("'a' twice") == true)
    }
}

final class TSVTests: XCTestCase {
    func testTabsSplitAndQuotesAreOrdinaryCharacters() throws {
        let text = "id\tsentiment\ttext\r\n1\t2.5\t\"quoted\" start, and a 9\" TV\r\n2\t-1\tplain\r\n"
        let table = try Table(contentsOf: try temporaryFile(text, extension: "tsv"))
        XCTAssertEqual(table.columns, ["id", "sentiment", "text"])
        XCTAssertEqual(try table.column("text"), ["\"quoted\" start, and a 9\" TV", "plain"])
        XCTAssertEqual(try table.floats("sentiment"), [2.5, -1])
    }

    func testATabInsideQuotesStillSplits() throws {
        let error = dataError { try Table(contentsOf: try temporaryFile("a\tb\n\"x\ty\"\t1\n", extension: "tsv")) }
        XCTAssertEqual(error?.line, 2)
    }

    func testAgreesWithPythonsGLUEStyleReader() throws {
        guard let python = referencePython else {
            throw XCTSkip("DPTRAIN_PYTHON is not set; skipping the comparison with Python's csv module")
        }
        let text = "a\tb\tc\n\"x\ty\"\t'z'\n1\t2\t3\r\n\u{00e9}\u{2019}\t\\n\t \n"
        let url = try temporaryFile(text, extension: "tsv")
        let script = """
        import csv, json, sys
        with open(sys.argv[1], newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f, delimiter="\\t", quotechar=None))
        print(json.dumps(rows))
        """
        let output = try runPython(python, script, arguments: [url.path])
        let expected = try JSONDecoder().decode([[String]].self, from: output)
        let table = try Table(contentsOf: url)
        XCTAssertEqual(table.columns, expected[0])
        for (index, name) in table.columns.enumerated() {
            XCTAssertEqual(try table.column(name), expected.dropFirst().map { $0[index] })
        }
    }
}

final class JSONLinesTests: XCTestCase {
    func testScalarsBecomeTextAndKeysKeepTheirOrder() throws {
        let text = """
        {"text": "caf\\u00e9 \\ud83d\\ude00 \\"q\\"\\n", "label": 3, "score": -1.5e2, "ok": true, "id": 12345678901234567890}

        {"label": 0, "text": "b", "ok": false, "score": 0, "id": 7, "meta": {"a": [1, {"b": null}]}}
        """
        let table = try Table(contentsOf: try temporaryFile(text, extension: "jsonl"))
        XCTAssertEqual(table.columns, ["text", "label", "score", "ok", "id", "meta"])
        XCTAssertEqual(try table.column("text"), ["café 😀 \"q\"\n", "b"])
        XCTAssertEqual(try table.column("id"), ["12345678901234567890", "7"])
        XCTAssertEqual(try table.column("ok"), ["true", "false"])
        XCTAssertEqual(try table.floats("score"), [-150, 0])
        XCTAssertEqual([table.lineNumber(ofRow: 0), table.lineNumber(ofRow: 1)], [1, 3])
        let error = dataError { try table.column("meta") }
        XCTAssertEqual(error?.line, 1)
        XCTAssertEqual(error?.column, "meta")
    }

    func testNullIsNoValue() throws {
        let table = try Table(contentsOf: try temporaryFile("{\"a\": 1, \"b\": 2}\n{\"a\": null, \"b\": 3}\n", extension: "ndjson"))
        XCTAssertEqual(try table.column("b"), ["2", "3"])
        XCTAssertEqual(dataError { try table.column("a") }?.line, 2)
    }

    func testInvalidJSONNamesTheLine() throws {
        let cases = [
            "{\"a\": 1,}", "{\"a\": 01}", "{\"a\": \"x}", "[1, 2]", "{\"a\": 1} x", "{a: 1}",
            "{\"a\": tru}", "{\"a\": \"\\x\"}", "{\"a\": \"\\ud800\"}", "{\"a\": 1, \"a\": 2}",
        ]
        for line in cases {
            let url = try temporaryFile("{\"a\": 0}\n\n" + line + "\n", extension: "jsonl")
            let error = dataError { try Table(contentsOf: url) }
            XCTAssertEqual(error?.line, 3, line)
        }
    }
}

final class LinesTests: XCTestCase {
    func testEveryLineIsARowInColumnText() throws {
        let table = try Table(contentsOf: try temporaryFile("first\r\n\nthird, with \"quotes\"\tand tabs\n", extension: "txt"))
        XCTAssertEqual(table.columns, ["text"])
        XCTAssertEqual(try table.column("text"), ["first", "", "third, with \"quotes\"\tand tabs"])
        XCTAssertEqual(table.lineNumber(ofRow: 2), 3)
        XCTAssertEqual(dataError { try table.texts("text") }?.line, 2)
    }
}

final class TableErrorTests: XCTestCase {
    func testInvalidUTF8NamesItsLine() throws {
        for ext in ["csv", "tsv", "jsonl", "txt"] {
            let body: [UInt8] = ext == "jsonl"
                ? Array("{\"a\": \"x\"}\n{\"a\": \"".utf8) + [0xC3, 0x28] + Array("\"}\n".utf8)
                : Array("a\nok\n".utf8) + [0x61, 0xFF, 0x62, 0x0A]
            let url = try temporaryFile(body, extension: ext)
            let error = dataError { try Table(contentsOf: url) }
            XCTAssertEqual(error?.description, "\(url.path):\(ext == "jsonl" ? 2 : 3): invalid UTF-8", ext)
        }
    }

    func testEmptyFilesAndHeaderOnlyFiles() throws {
        for (text, ext) in [("", "csv"), ("\n\r\n", "tsv"), ("  \n", "jsonl"), ("", "txt")] {
            XCTAssertTrue(dataError { try Table(contentsOf: try temporaryFile(text, extension: ext)) }?.reason
                .contains("empty") == true, ext)
        }
        let error = dataError { try Table(contentsOf: try temporaryFile("id,text\n", extension: "csv")) }
        XCTAssertEqual(error?.reason, "no rows after the header (id, text)")
    }

    func testMissingColumnListsTheColumns() throws {
        let url = try temporaryFile("id,text\n1,a\n", extension: "csv")
        let table = try Table(contentsOf: url)
        XCTAssertEqual(dataError { try table.column("label") }?.description,
                       "\(url.path): no column 'label'; the columns are 'id', 'text'")
    }

    func testUnreadableFile() throws {
        let url = URL(fileURLWithPath: "/nonexistent/dp-train/data.csv")
        XCTAssertEqual(dataError { try Table(contentsOf: url) }?.path, "/nonexistent/dp-train/data.csv")
    }

    func testFloatsRejectTextEmptyAndNonFiniteValues() throws {
        let url = try temporaryFile("y,z\n 1.5 ,0\n-2e-3,0\n", extension: "csv")
        XCTAssertEqual(try Table(contentsOf: url).floats("y"), [1.5, -0.002])
        for bad in ["abc", "", "nan", "inf", "-Infinity", "1e40", "1,5"] {
            let field = bad.contains(",") ? "\"\(bad)\"" : bad
            let url = try temporaryFile("y,z\n1,0\n\(field),0\n", extension: "csv")
            let error = dataError { try Table(contentsOf: url).floats("y") }
            XCTAssertEqual(error?.line, 3, bad)
            XCTAssertEqual(error?.column, "y", bad)
            XCTAssertTrue(error?.description.hasPrefix("\(url.path):3: column 'y': ") == true, "\(String(describing: error))")
        }
    }

    func testTextsRejectEmptyTexts() throws {
        let table = try Table(contentsOf: try temporaryFile("text\tlabel\nfine\t1\n \t0\n", extension: "tsv"))
        XCTAssertEqual(table.format, .tsv)
        XCTAssertEqual(dataError { try table.texts("text") }?.description.hasSuffix(":3: column 'text': empty text"), true)
    }

    /// Speed belongs to benchmarks; what ten thousand quoted rows must do here is parse, each one.
    func testTenThousandQuotedRowsKeepTheirFields() throws {
        var text = "id,text,target\n"
        for row in 0..<10_000 {
            text += "\(row),\"A sentence, with \"\"quotes\"\" and a comma, number \(row).\",\(Double(row) / 7)\n"
        }
        let table = try Table(contentsOf: try temporaryFile(text, extension: "csv"))
        XCTAssertEqual(table.rowCount, 10_000)
        XCTAssertEqual(try table.floats("target"), (0..<10_000).map { Float("\(Double($0) / 7)")! })
        XCTAssertEqual(try table.column("text"), (0..<10_000).map { "A sentence, with \"quotes\" and a comma, number \($0)." })
    }
}

